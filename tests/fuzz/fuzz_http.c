/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - the HTTP response checks that sffs does itself (libcurl
 * splits the response): the Content-Range value, the status line's reason
 * phrase and the pure checks built on them (http_hdr.h: a 206 against the
 * range asked and the size pinned, 200 and 416 answers, the probe's size,
 * validators, https downgrades).
 *
 * The input is a header block: each line (split at '\n') is given to
 * fetch_parse_status_reason with several buffer sizes, and, as a C string
 * without its '\r', to fetch_parse_content_range in both modes and to
 * every check of http_hdr.h, with the range, size and statuses derived
 * from what the line parses to (and nearby values). Results are checked
 * against a small independent reference parser, so a wrong accept or
 * reject is a crash as much as a memory error is.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "fetch_i.h"

/* Reference: a decimal number without sign that fits 64 bits, ending at
 * stop. Advances *s past stop. */
static bool ref_u64(const char **s, char stop, uint64_t *v)
{
	const char *p = *s;
	uint64_t n = 0;

	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p++ - '0');

		if (n > UINT64_MAX / 10 || n * 10 > UINT64_MAX - d)
			return false;
		n = n * 10 + d;
	}
	if (*p != stop)
		return false;
	*s = p + 1;
	*v = n;
	return true;
}

static bool ref_range(const char *s, bool want, uint64_t *a, uint64_t *b,
		      uint64_t *t)
{
	if (strncmp(s, "bytes ", 6) != 0)
		return false;
	s += 6;
	if (want) {
		if (!ref_u64(&s, '-', a) || !ref_u64(&s, '/', b) || *a > *b)
			return false;
	} else {
		if (strncmp(s, "*/", 2) != 0)
			return false;
		s += 2;
	}
	return ref_u64(&s, '\0', t);
}

static void check_range(const char *s)
{
	uint64_t a = 1, b = 2, t = 3, ra, rb, rt;
	int rc;
	bool ok;

	rc = fetch_parse_content_range(s, true, &a, &b, &t);
	ok = ref_range(s, true, &ra, &rb, &rt);
	FUZZ_CHECK(rc == 0 || rc == -EIO);
	FUZZ_CHECK((rc == 0) == ok);
	if (ok)
		FUZZ_CHECK(a == ra && b == rb && t == rt && a <= b);
	rc = fetch_parse_content_range(s, false, NULL, NULL, &t);
	ok = ref_range(s, false, NULL, NULL, &rt);
	FUZZ_CHECK(rc == 0 || rc == -EIO);
	FUZZ_CHECK((rc == 0) == ok);
	if (ok)
		FUZZ_CHECK(t == rt);
}

/* A 206 checked against the range it parses to, and nearby ones. */
static void check_206(const char *s)
{
	uint64_t a, b, t;
	bool ok = ref_range(s, true, &a, &b, &t);
	struct fetch_cr got;
	enum fetch_hdr_rc rc;

	if (!ok) {
		FUZZ_CHECK(fetch_hdr_check_206(s, 0, 1, 1, &got) ==
			   FETCH_HDR_MALFORMED);
		return;
	}
	if (b < UINT64_MAX) {
		rc = fetch_hdr_check_206(s, a, b + 1, t, &got);
		FUZZ_CHECK(rc == FETCH_HDR_OK);
		FUZZ_CHECK(got.a == a && got.b == b && got.total == t);
	}
	if (t < UINT64_MAX)
		FUZZ_CHECK(fetch_hdr_check_206(s, a, a + 1, t + 1, &got) ==
			   FETCH_HDR_SIZE_CHANGED);
	if (a < b)
		FUZZ_CHECK(fetch_hdr_check_206(s, a + 1, b + 1, t, &got) ==
			   FETCH_HDR_WRONG_RANGE);
}

static void check_probe(const char *s)
{
	uint64_t a, b, t, size = 42;
	bool ok = ref_range(s, true, &a, &b, &t);
	enum fetch_hdr_rc rc = fetch_hdr_probe_size(206, s, 1, 1, &size);

	FUZZ_CHECK((rc == FETCH_HDR_OK) == (ok && a == 0 && b == 0));
	FUZZ_CHECK(rc == FETCH_HDR_OK ? size == t
				      : rc == FETCH_HDR_NO_SIZE && size == 42);
	ok = ref_range(s, false, NULL, NULL, &t);
	rc = fetch_hdr_probe_size(416, s, -1, 0, &size);
	FUZZ_CHECK((rc == FETCH_HDR_OK) == (ok && t == 0));
	FUZZ_CHECK(rc == FETCH_HDR_OK || rc == FETCH_HDR_STATUS);
	rc = fetch_hdr_check_416(s, 1000);
	FUZZ_CHECK((rc == FETCH_HDR_SIZE_CHANGED) == (ok && t != 1000));
	FUZZ_CHECK(fetch_hdr_probe_size(503, s, 1, 1, &size) ==
		   FETCH_HDR_STATUS);
}

/* Reference: 1..FETCH_VALIDATOR_MAX bytes, each printable or a blank. */
static bool ref_validator(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > FETCH_VALIDATOR_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return false;
	return true;
}

static void check_validators(const char *s, const char *prev)
{
	bool ok = ref_validator(s);
	const char *v = NULL;
	enum fetch_pin pin;

	FUZZ_CHECK(fetch_hdr_validator_ok(s) == ok);
	pin = fetch_hdr_pick_validator(s, prev, &v);
	FUZZ_CHECK(v != NULL);
	if (ok)
		FUZZ_CHECK(pin == FETCH_PIN_ETAG && v == s);
	else if (ref_validator(prev))
		FUZZ_CHECK(pin == FETCH_PIN_LASTMOD && v == prev);
	else
		FUZZ_CHECK(pin == FETCH_PIN_NONE && !strcmp(v, ""));
	FUZZ_CHECK(fetch_hdr_validator_same(FETCH_PIN_ETAG, s, s, NULL));
	FUZZ_CHECK(fetch_hdr_validator_same(FETCH_PIN_ETAG, prev, s, prev) ==
		   !strcmp(prev, s));
	FUZZ_CHECK(fetch_hdr_validator_same(FETCH_PIN_NONE, prev, s, s));
	FUZZ_CHECK(fetch_hdr_https_downgrade(prev, s) ==
		   (!strncasecmp(prev, "https://", 8) &&
		    strncasecmp(s, "https://", 8) != 0));
}

static void check_reason(const char *line, size_t n)
{
	static const size_t sizes[] = {1, 2, 8, 64};
	char buf[65];
	size_t k;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t len;

		memset(buf, 'Z', sizeof(buf));
		buf[sizes[k]] = '#'; /* canary just past the buffer */
		fetch_parse_status_reason(line, n, buf, sizes[k]);
		FUZZ_CHECK(buf[sizes[k]] == '#');
		if (n < 5 || memcmp(line, "HTTP/", 5) != 0) {
			FUZZ_CHECK(buf[0] == 'Z'); /* untouched */
			continue;
		}
		len = strnlen(buf, sizes[k]);
		FUZZ_CHECK(len < sizes[k]);
		FUZZ_CHECK(!memchr(buf, '\r', len) && !memchr(buf, '\n', len));
		FUZZ_CHECK(len == 0 || memmem(line, n, buf, len) != NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	char *line = malloc(size + 1), *prev = malloc(size + 1);

	if (!line || !prev)
		abort();
	prev[0] = '\0';
	FUZZ_CHECK(fetch_parse_content_range(NULL, true, NULL, NULL, NULL) ==
		   -EIO);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		size_t len = n;

		check_reason(p, n);
		memcpy(line, p, n);
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		line[len] = '\0';
		check_range(line);
		check_206(line);
		check_probe(line);
		check_validators(line, prev);
		memcpy(prev, line, len + 1);
		p += n;
	}
	free(prev);
	free(line);
	return 0;
}
