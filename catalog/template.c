/* SPDX-License-Identifier: MIT */
/*
 * template.c - placeholder names, URL templates, matching one path segment
 * against a template segment, version order and the node's architecture.
 * Pure: no I/O except uname(2).
 */
#include "catalog_i.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

/* Longest template (and template segment) accepted: templates come from
 * the command line, and matching backtracks over them. */
#define TEMPLATE_MAX 1024
/* Most placeholders one segment may hold; bounds matching's recursion. */
#define SEGMENT_MAX_PLACEHOLDERS 8

enum ph { PH_NONE = -1, PH_VERSION, PH_TOOLCHAIN, PH_ARCH };

static const char *const ph_names[] = {"version", "toolchain", "arch"};

static bool name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Like catalog_name_ok on the len bytes at s (not NUL-terminated). */
static bool name_ok_n(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > CATALOG_NAME_MAX || s[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

bool catalog_name_ok(const char *s)
{
	return s && name_ok_n(s, strnlen(s, CATALOG_NAME_MAX + 1));
}

bool catalog_version_ok(const char *s)
{
	return catalog_name_ok(s) && is_digit(s[0]);
}

/*
 * If s starts a placeholder ("{version}" ...), returns which and sets
 * *len to its length with the braces; PH_NONE otherwise (also for an
 * unknown or unclosed one: callers check s[0] == '{' to tell).
 */
static enum ph placeholder_at(const char *s, size_t *len)
{
	size_t k, n;

	if (s[0] != '{')
		return PH_NONE;
	for (k = 0; k < sizeof(ph_names) / sizeof(ph_names[0]); k++) {
		n = strlen(ph_names[k]);
		if (!strncmp(s + 1, ph_names[k], n) && s[n + 1] == '}') {
			*len = n + 2;
			return (enum ph)k;
		}
	}
	return PH_NONE;
}

static char *var_of(struct catalog_vars *v, enum ph ph)
{
	switch (ph) {
	case PH_VERSION:
		return v->version;
	case PH_TOOLCHAIN:
		return v->toolchain;
	case PH_ARCH:
		return v->arch;
	default:
		return NULL;
	}
}

static const char *cvar_of(const struct catalog_vars *v, enum ph ph)
{
	return var_of((struct catalog_vars *)v, ph);
}

int catalog_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Checks one segment [s, s + len): no "." or "..", only known
 * placeholders, never two next to each other. Records those seen. */
static int check_segment(const char *s, size_t len, bool seen[3], char *err,
			 size_t errlen)
{
	bool prev_ph = false;
	size_t i = 0, n;
	enum ph ph;

	if ((len == 1 && s[0] == '.') || (len == 2 && !strncmp(s, "..", 2)))
		return catalog_fail(err, errlen,
			    "template has a \".\" or \"..\" "
			    "segment");
	while (i < len) {
		if (s[i] == '}')
			return catalog_fail(err, errlen,
				    "template has a '}' without "
				    "'{'");
		if (s[i] != '{') {
			prev_ph = false;
			i++;
			continue;
		}
		ph = placeholder_at(s + i, &n);
		if (ph == PH_NONE)
			return catalog_fail(err, errlen,
				    "template has an unknown placeholder at "
				    "\"%.20s\" (only {version}, {toolchain}, "
				    "{arch})",
				    s + i);
		if (prev_ph)
			return catalog_fail(err, errlen,
				    "template has two "
				    "placeholders next to each "
				    "other");
		seen[ph] = true;
		prev_ph = true;
		i += n;
	}
	return 0;
}

int catalog_template_check(const char *tmpl, char *err, size_t errlen)
{
	bool seen[3] = {false, false, false};
	const char *s, *end;
	size_t tlen;
	int rc;

	if (!tmpl || !*tmpl)
		return catalog_fail(err, errlen, "template is empty");
	tlen = strnlen(tmpl, TEMPLATE_MAX + 1);
	if (tlen > TEMPLATE_MAX)
		return catalog_fail(err, errlen, "template is longer than %d bytes",
			    TEMPLATE_MAX);
	if (tmpl[0] == '/')
		return catalog_fail(err, errlen,
			    "template must be relative (it "
			    "starts with '/')");
	if (strpbrk(tmpl, "?#"))
		return catalog_fail(err, errlen, "template holds '?' or '#'");
	for (s = tmpl;; s = end + 1) {
		end = strchr(s, '/');
		if (!end)
			end = tmpl + tlen;
		if (end == s)
			return catalog_fail(err, errlen,
				    *end ? "template has an empty segment "
					   "(\"//\")"
					 : "template's last segment is empty "
					   "(it must name the file)");
		rc = check_segment(s, (size_t)(end - s), seen, err, errlen);
		if (rc)
			return rc;
		if (!*end)
			break;
	}
	if (!seen[PH_VERSION] || !seen[PH_TOOLCHAIN])
		return catalog_fail(err, errlen,
			    "template needs both {version} and "
			    "{toolchain}");
	return 0;
}

char *catalog_template_expand(const char *tmpl, const struct catalog_vars *v)
{
	size_t tlen, i, n, out = 0;
	const char *val;
	char *buf;
	enum ph ph;

	tlen = tmpl ? strnlen(tmpl, TEMPLATE_MAX + 1) : 0;
	if (!tmpl || !v || tlen > TEMPLATE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	/* A placeholder is at least 6 bytes ("{arch}") and its value at
	 * most CATALOG_NAME_MAX: this bounds the expanded length. */
	buf = malloc(tlen * (CATALOG_NAME_MAX / 6 + 1) + 1);
	if (!buf) {
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < tlen;) {
		ph = placeholder_at(tmpl + i, &n);
		if (ph == PH_NONE) {
			if (tmpl[i] == '{' || tmpl[i] == '}')
				goto out_inval;
			buf[out++] = tmpl[i++];
			continue;
		}
		val = cvar_of(v, ph);
		if (!catalog_name_ok(val))
			goto out_inval;
		memcpy(buf + out, val, strlen(val));
		out += strlen(val);
		i += n;
	}
	buf[out] = '\0';
	return buf;

out_inval:
	free(buf);
	errno = EINVAL;
	return NULL;
}

/*
 * Matches text against pattern, binding unbound placeholders in v (a
 * scratch copy: on failure it may hold partial bindings). Each level of
 * recursion consumes one unbound placeholder; depth counts them.
 */
static bool match_from(const char *p, const char *t, struct catalog_vars *v,
		       unsigned depth)
{
	size_t n, run, len;
	const char *val;
	char *slot;
	enum ph ph;

	for (;;) {
		if (*p == '\0')
			return *t == '\0';
		ph = placeholder_at(p, &n);
		if (ph == PH_NONE) {
			if (*p == '{' || *p == '}' || *p != *t)
				return false;
			p++;
			t++;
			continue;
		}
		val = cvar_of(v, ph);
		if (*val == '\0')
			break;
		len = strlen(val);
		if (strncmp(t, val, len) != 0)
			return false;
		p += n;
		t += len;
	}
	if (depth >= SEGMENT_MAX_PLACEHOLDERS)
		return false;
	slot = var_of(v, ph);
	for (run = 0; run < CATALOG_NAME_MAX && name_char(t[run]); run++)
		;
	/* Longest first, then shorter until the rest matches. */
	for (len = run; len > 0; len--) {
		if (!name_ok_n(t, len) || (ph == PH_VERSION && !is_digit(t[0])))
			continue;
		memcpy(slot, t, len);
		slot[len] = '\0';
		if (match_from(p + n, t + len, v, depth + 1))
			return true;
		slot[0] = '\0';
	}
	return false;
}

int catalog_segment_match(const char *pattern, const char *text,
			  struct catalog_vars *v)
{
	struct catalog_vars scratch;

	if (!pattern || !text || !v ||
	    strnlen(pattern, TEMPLATE_MAX + 1) > TEMPLATE_MAX ||
	    strnlen(text, TEMPLATE_MAX + 1) > TEMPLATE_MAX ||
	    strchr(pattern, '/') || strchr(text, '/'))
		return -ENOENT;
	/* Work on a copy, so a failed match leaves v as it was; the values
	 * in v are terminated here in case the caller's are not. */
	scratch = *v;
	scratch.version[CATALOG_NAME_MAX] = '\0';
	scratch.toolchain[CATALOG_NAME_MAX] = '\0';
	scratch.arch[CATALOG_NAME_MAX] = '\0';
	if (!match_from(pattern, text, &scratch, 0))
		return -ENOENT;
	*v = scratch;
	return 0;
}

void catalog_segments_free(char **seg, size_t n)
{
	size_t i;

	if (!seg)
		return;
	for (i = 0; i < n; i++) {
		free(seg[i]);
		seg[i] = NULL;
	}
}

int catalog_template_segments(const char *tmpl, char **seg, size_t max,
			      size_t *n)
{
	const char *s, *end;
	size_t count = 0;

	if (!tmpl || !seg || !n ||
	    strnlen(tmpl, TEMPLATE_MAX + 1) > TEMPLATE_MAX)
		return -EINVAL;
	for (s = tmpl;; s = end + 1) {
		end = strchr(s, '/');
		if (!end)
			end = s + strlen(s);
		if (count == max) {
			catalog_segments_free(seg, count);
			return -EINVAL;
		}
		seg[count] = strndup(s, (size_t)(end - s));
		if (!seg[count]) {
			catalog_segments_free(seg, count);
			return -ENOMEM;
		}
		count++;
		if (!*end)
			break;
	}
	*n = count;
	return 0;
}

/* Compares the digit runs [a, a + na) and [b, b + nb) by value. */
static int digits_cmp(const char *a, size_t na, const char *b, size_t nb)
{
	int c;

	while (na > 0 && *a == '0') {
		a++;
		na--;
	}
	while (nb > 0 && *b == '0') {
		b++;
		nb--;
	}
	if (na != nb)
		return na < nb ? -1 : 1;
	c = memcmp(a, b, na);
	return c < 0 ? -1 : c > 0;
}

/* Compares the other-character runs bytewise, a prefix first. */
static int chars_cmp(const char *a, size_t na, const char *b, size_t nb)
{
	int c = memcmp(a, b, na < nb ? na : nb);

	if (c)
		return c < 0 ? -1 : 1;
	return na < nb ? -1 : na > nb;
}

static size_t run_len(const char *s, bool digits)
{
	size_t n = 0;

	while (s[n] && is_digit(s[n]) == digits)
		n++;
	return n;
}

int catalog_version_cmp(const char *a, const char *b)
{
	const char *pa = a, *pb = b;
	size_t na, nb;
	bool da, db;
	int c;

	if (!a || !b)
		return a == b ? 0 : (a ? 1 : -1);
	while (*pa && *pb) {
		da = is_digit(*pa);
		db = is_digit(*pb);
		if (da != db) {
			/* A digit run against other characters: their first
			 * bytes differ, and digits are contiguous in ASCII,
			 * so this keeps the order transitive. */
			return (unsigned char)*pa < (unsigned char)*pb ? -1 : 1;
		}
		na = run_len(pa, da);
		nb = run_len(pb, db);
		c = da ? digits_cmp(pa, na, pb, nb) : chars_cmp(pa, na, pb, nb);
		if (c)
			return c;
		pa += na;
		pb += nb;
	}
	if (*pa || *pb)
		return *pa ? 1 : -1;
	/* Equal as versions ("007" and "7"): plain string order decides,
	 * so only equal strings compare equal. */
	c = strcmp(a, b);
	return c < 0 ? -1 : c > 0;
}

int catalog_node_arch(char *buf, size_t len)
{
	struct utsname u;
	const char *m;

	if (!buf || len == 0)
		return -EINVAL;
	if (uname(&u) != 0)
		return -errno;
	m = u.machine;
	if (!strcmp(m, "x86_64"))
		m = "amd64";
	else if (!strcmp(m, "aarch64"))
		m = "arm64";
	if (strlen(m) >= len)
		return -ERANGE;
	memcpy(buf, m, strlen(m) + 1);
	return 0;
}
