/* SPDX-License-Identifier: MIT */
/*
 * fuzz_http.c - the HTTP response parsing that sffs does itself (libcurl
 * splits the response; ETag and Content-Length values come from libcurl and
 * are compared, not parsed): the Content-Range value and the status line's
 * reason phrase (fetch_i.h).
 *
 * The input is a header block: each line (split at '\n') is given to
 * fetch_parse_status_reason with several buffer sizes, and, as a C string
 * without its '\r', to fetch_parse_content_range in both modes. Results are
 * checked against a small independent reference parser, so a wrong accept
 * or reject is a crash as much as a memory error is.
 */
#include "fuzz_common.h"

#include <errno.h>
#include <stdbool.h>

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
	char *line = malloc(size + 1);

	if (!line)
		abort();
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
		p += n;
	}
	free(line);
	return 0;
}
