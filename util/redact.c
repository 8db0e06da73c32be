/* SPDX-License-Identifier: MIT */
/*
 * redact.c - what of a URL or an untrusted name may be shown: URLs lose
 * their userinfo, query and fragment (where presigned URLs and tokens keep
 * their secrets); names lose control characters and invalid UTF-8.
 */
#include "sffs/util.h"

#include <ctype.h>
#include <string.h>

/* Appends n bytes of s to buf[*at..len), always NUL-terminated. */
static void put(char *buf, size_t len, size_t *at, const char *s, size_t n)
{
	size_t room = len - 1 - *at;

	if (n > room)
		n = room;
	memcpy(buf + *at, s, n);
	*at += n;
	buf[*at] = '\0';
}

/* The authority's userinfo ends at its last '@'; NULL when there is none. */
static const char *userinfo_end(const char *auth, size_t alen)
{
	const char *at = NULL;

	for (size_t i = 0; i < alen; i++)
		if (auth[i] == '@')
			at = auth + i;
	return at;
}

char *util_url_redact(const char *url, char *buf, size_t len)
{
	const char *sep, *auth, *at, *rest;
	size_t o = 0, alen, plen;

	if (!buf || !len)
		return buf;
	buf[0] = '\0';
	if (!url)
		return buf;
	sep = strstr(url, "://");
	if (!sep || strcspn(url, "/?#@") < (size_t)(sep - url)) {
		put(buf, len, &o, url, strlen(url)); /* a local path */
		return buf;
	}
	auth = sep + 3;
	alen = strcspn(auth, "/?#");
	put(buf, len, &o, url, (size_t)(auth - url));
	at = userinfo_end(auth, alen);
	if (at) {
		put(buf, len, &o, UTIL_REDACTED "@", strlen(UTIL_REDACTED "@"));
		alen -= (size_t)(at + 1 - auth);
		auth = at + 1;
	}
	put(buf, len, &o, auth, alen);
	rest = auth + alen;
	plen = strcspn(rest, "?#");
	put(buf, len, &o, rest, plen);
	if (rest[plen])
		put(buf, len, &o,
		    rest[plen] == '?' ? "?" UTIL_REDACTED : "#" UTIL_REDACTED,
		    strlen("?" UTIL_REDACTED));
	return buf;
}

static bool scheme_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

/* Where a URL inside a text ends: at white space or a quote, before the
 * punctuation a sentence puts after it. */
static size_t url_token_len(const char *u)
{
	size_t n = strcspn(u, " \t\r\n\"'<>`");

	while (n && strchr(":,;.)]", u[n - 1]))
		n--;
	return n;
}

char *util_text_redact(const char *s, char *buf, size_t len)
{
	char url[UTIL_URL_SHOWN_MAX], shown[UTIL_URL_SHOWN_MAX];
	const char *p, *sep, *start;
	size_t o = 0, n;

	if (!buf || !len)
		return buf;
	buf[0] = '\0';
	if (!s)
		return buf;
	for (p = s; (sep = strstr(p, "://"));) {
		for (start = sep; start > p && scheme_char(start[-1]); start--)
			;
		put(buf, len, &o, p, (size_t)(start - p));
		n = url_token_len(start);
		if (start == sep || n >= sizeof(url)) {
			/* no scheme, or too long to redact: hide it all */
			put(buf, len, &o, start, (size_t)(sep - start) + 3);
			put(buf, len, &o, UTIL_REDACTED, strlen(UTIL_REDACTED));
			p = sep + 3 + url_token_len(sep + 3);
			continue;
		}
		memcpy(url, start, n);
		url[n] = '\0';
		util_url_redact(url, shown, sizeof(shown));
		put(buf, len, &o, shown, strlen(shown));
		p = start + n;
	}
	put(buf, len, &o, p, strlen(p));
	return buf;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0. Overlong forms,
 * surrogates and code points past U+10FFFF are invalid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

char *util_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0, n;
	char esc[4] = {'\\', 'x', 0, 0};

	if (!buf || !len)
		return buf;
	buf[0] = '\0';
	if (!s)
		return buf;
	while (*p && o < len - 1) {
		n = utf8_len(p);
		if (n == 1 && *p >= 0x20 && *p != 0x7f && *p != '\\') {
			put(buf, len, &o, (const char *)p, 1);
		} else if (n > 1) {
			if (o + n > len - 1)
				break; /* never half a character */
			put(buf, len, &o, (const char *)p, n);
		} else {
			n = 1;
			esc[2] = hex[*p >> 4];
			esc[3] = hex[*p & 0xf];
			if (o + 4 > len - 1)
				break;
			put(buf, len, &o, esc, 4);
		}
		p += n;
	}
	return buf;
}
