/* SPDX-License-Identifier: MIT */
/*
 * test_redact.c - util_url_redact and util_escape, table driven: what a
 * log line, fsname or xattr may show of a URL or an untrusted name.
 */
#include "check.h"
#include "sffs/util.h"

#include <string.h>

struct row {
	const char *in, *want;
};

static const struct row urls[] = {
    {"https://h.example/a/b.tar.gz", "https://h.example/a/b.tar.gz"},
    {"http://127.0.0.1:8080/x.tar.gz?X-Amz-Signature=SECRET&X-Amz-"
     "Credential=AKIA",
     "http://127.0.0.1:8080/x.tar.gz?..."},
    {"https://user:SECRET@h.example:443/p?q=1#frag",
     "https://...@h.example:443/p?..."},
    {"https://u@v:SECRET@h/p", "https://...@h/p"},
    {"https://h/p#SECRET", "https://h/p#..."},
    {"https://h?SECRET", "https://h?..."},
    {"https://h#x?SECRET", "https://h#..."},
    {"https://h/a@b/c", "https://h/a@b/c"},
    {"HTTPS://H/P?sig=SECRET", "HTTPS://H/P?..."},
    {"s3://bucket/key.tar.gz", "s3://bucket/key.tar.gz"},
    {"file:///srv/a.tar.gz", "file:///srv/a.tar.gz"},
    {"/srv/a?b.tar.gz", "/srv/a?b.tar.gz"},
    {"rel/a://b", "rel/a://b"},
    {"", ""},
};

static void test_urls(void)
{
	char buf[UTIL_URL_SHOWN_MAX];

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		util_url_redact(urls[i].in, buf, sizeof(buf));
		if (strcmp(buf, urls[i].want))
			fprintf(stderr, "redact '%s': '%s' != '%s'\n",
				urls[i].in, buf, urls[i].want);
		CHECK(!strcmp(buf, urls[i].want));
		CHECK(!strstr(buf, "SECRET"));
	}
}

/* Every truncation of a redacted URL is a prefix of the whole one: a
 * short buffer never shows a removed byte. */
static void test_url_truncation(void)
{
	const char *in = "https://u:SECRET@host.example/path?sig=SECRET";
	char full[256], small[64];

	util_url_redact(in, full, sizeof(full));
	for (size_t len = 1; len < sizeof(small); len++) {
		util_url_redact(in, small, len);
		CHECK(strlen(small) < len);
		CHECK(!strncmp(full, small, strlen(small)));
		CHECK(!strstr(small, "SECRET"));
	}
	CHECK(util_url_redact(NULL, small, sizeof(small)) == small);
	CHECK(small[0] == '\0');
}

static const struct row texts[] = {
    {"no url here: a/b?c", "no url here: a/b?c"},
    {"https://u:SECRET@h/p?sig=SECRET: bytes 0-9: cannot connect",
     "https://...@h/p?...: bytes 0-9: cannot connect"},
    {"index 'http://h/a.sfidx?SECRET' (from https://h/a?SECRET).",
     "index 'http://h/a.sfidx?...' (from https://h/a?...)."},
    {"a http://h/x?SECRET b s3://bkt/k c", "a http://h/x?... b s3://bkt/k c"},
    {"odd ://h/?SECRET end", "odd ://... end"},
    /* no white space between them: one token, redacted as one URL */
    {"two:http://h?SECRET,https://g#SECRET;", "two:http://h?...;"},
};

static void test_texts(void)
{
	char buf[512];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		util_text_redact(texts[i].in, buf, sizeof(buf));
		if (strcmp(buf, texts[i].want))
			fprintf(stderr, "text '%s': '%s' != '%s'\n",
				texts[i].in, buf, texts[i].want);
		CHECK(!strcmp(buf, texts[i].want));
		CHECK(!strstr(buf, "SECRET"));
	}
}

/* A URL longer than the redactor's buffer is hidden whole. */
static void test_text_long_url(void)
{
	static char in[3 * UTIL_URL_SHOWN_MAX], buf[3 * UTIL_URL_SHOWN_MAX];
	size_t n = sizeof(in) - 40;

	memcpy(in, "x https://h/", 12);
	memset(in + 12, 'a', n - 12);
	memcpy(in + n, "?SECRET y", 10);
	util_text_redact(in, buf, sizeof(buf));
	CHECK(!strcmp(buf, "x https://... y"));
}

static const struct row names[] = {
    {"usr/bin/srun", "usr/bin/srun"},
    {"a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"},
    {"\x1b[2Jclear", "\\x1b[2Jclear"},
    {"back\\slash\x7f", "back\\x5cslash\\x7f"},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
    {"bad\xff\xc3", "bad\\xff\\xc3"},
    {"overlong\xc0\xaf", "overlong\\xc0\\xaf"},
    {"surrogate\xed\xa0\x80", "surrogate\\xed\\xa0\\x80"},
    {"toobig\xf4\x90\x80\x80", "toobig\\xf4\\x90\\x80\\x80"},
};

static void test_names(void)
{
	char buf[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		util_escape(names[i].in, buf, sizeof(buf));
		if (strcmp(buf, names[i].want))
			fprintf(stderr, "escape %zu: '%s' != '%s'\n", i, buf,
				names[i].want);
		CHECK(!strcmp(buf, names[i].want));
	}
}

/* A short buffer ends before an escape or a character, never inside. */
static void test_name_truncation(void)
{
	char buf[8];

	util_escape("ab\ncd", buf, 7);
	CHECK(!strcmp(buf, "ab\\x0a"));
	util_escape("ab\ncd", buf, 6);
	CHECK(!strcmp(buf, "ab"));
	util_escape("a\xe2\x82\xac", buf, 4);
	CHECK(!strcmp(buf, "a"));
	util_escape("a\xe2\x82\xac", buf, 5);
	CHECK(!strcmp(buf, "a\xe2\x82\xac"));
	util_escape(NULL, buf, sizeof(buf));
	CHECK(buf[0] == '\0');
}

int main(void)
{
	test_urls();
	test_url_truncation();
	test_texts();
	test_text_long_url();
	test_names();
	test_name_truncation();
	return check_done();
}
