/* SPDX-License-Identifier: MIT */
/*
 * test_http_hdr.c - the pure checks of HTTP responses (fetch/http_hdr.h),
 * table-driven: every malformed, overflowing or truncated header refused,
 * every status and libcurl code given its errno.
 */
#include "check.h"

#include "../../fetch/http_hdr.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>

#define U64MAX "18446744073709551615"
#define U64OVER "18446744073709551616"

static const struct cr_case {
	const char *s;
	bool want_range;
	int rc;
	uint64_t a, b, total;
} cr_cases[] = {
    {"bytes 0-0/1", true, 0, 0, 0, 1},
    {"bytes 5-9/10", true, 0, 5, 9, 10},
    {"bytes 0-" U64MAX "/" U64MAX, true, 0, 0, UINT64_MAX, UINT64_MAX},
    {"bytes 0-" U64OVER "/1", true, -EIO, 0, 0, 0},
    {"bytes 0-1/" U64OVER, true, -EIO, 0, 0, 0},
    {"bytes 00000000000000000000000000001-2/3", true, 0, 1, 2, 3},
    {"bytes 9-5/10", true, -EIO, 0, 0, 0},
    {"bytes 0-9/10 ", true, -EIO, 0, 0, 0},
    {"bytes 0-9/10x", true, -EIO, 0, 0, 0},
    {"bytes 0-9/", true, -EIO, 0, 0, 0},
    {"bytes 0-9", true, -EIO, 0, 0, 0},
    {"bytes 0-", true, -EIO, 0, 0, 0},
    {"bytes 0", true, -EIO, 0, 0, 0},
    {"bytes ", true, -EIO, 0, 0, 0},
    {"bytes", true, -EIO, 0, 0, 0},
    {"", true, -EIO, 0, 0, 0},
    {"bytes -1-9/10", true, -EIO, 0, 0, 0},
    {"bytes +1-9/10", true, -EIO, 0, 0, 0},
    {"bytes  0-9/10", true, -EIO, 0, 0, 0},
    {"bytes 0 -9/10", true, -EIO, 0, 0, 0},
    {"Bytes 0-9/10", true, -EIO, 0, 0, 0},
    {"bytes 0-9/*", true, -EIO, 0, 0, 0},
    {"bytes */10", true, -EIO, 0, 0, 0},
    {"bytes */10", false, 0, 0, 0, 10},
    {"bytes */0", false, 0, 0, 0, 0},
    {"bytes */" U64OVER, false, -EIO, 0, 0, 0},
    {"bytes */", false, -EIO, 0, 0, 0},
    {"bytes *", false, -EIO, 0, 0, 0},
    {"bytes 0-9/10", false, -EIO, 0, 0, 0},
    {"bytes */10;", false, -EIO, 0, 0, 0},
};

static void test_content_range(void)
{
	for (size_t i = 0; i < sizeof(cr_cases) / sizeof(cr_cases[0]); i++) {
		const struct cr_case *c = &cr_cases[i];
		uint64_t a = 7, b = 7, t = 7;
		int rc =
		    fetch_parse_content_range(c->s, c->want_range, &a, &b, &t);

		CHECK(rc == c->rc);
		if (rc != c->rc)
			fprintf(stderr, "  case \"%s\": %d\n", c->s, rc);
		if (rc == 0 && c->rc == 0) {
			CHECK_EQ_U64(t, c->total);
			if (c->want_range) {
				CHECK_EQ_U64(a, c->a);
				CHECK_EQ_U64(b, c->b);
			}
		}
	}
	CHECK(fetch_parse_content_range(NULL, true, NULL, NULL, NULL) == -EIO);
}

static const struct d206_case {
	const char *cr;
	uint64_t start, end, size;
	enum fetch_hdr_rc rc;
} d206_cases[] = {
    {"bytes 100-199/1000", 100, 200, 1000, FETCH_HDR_OK},
    {"bytes 0-999/1000", 0, 1000, 1000, FETCH_HDR_OK},
    {"bytes 101-200/1000", 100, 200, 1000, FETCH_HDR_WRONG_RANGE},
    {"bytes 100-198/1000", 100, 200, 1000, FETCH_HDR_WRONG_RANGE},
    {"bytes 100-299/1000", 100, 200, 1000, FETCH_HDR_WRONG_RANGE},
    {"bytes 100-199/1001", 100, 200, 1000, FETCH_HDR_SIZE_CHANGED},
    {"bytes 100-199/999", 100, 200, 1000, FETCH_HDR_SIZE_CHANGED},
    {"bytes 100-199/", 100, 200, 1000, FETCH_HDR_MALFORMED},
    {"bytes 100-199", 100, 200, 1000, FETCH_HDR_MALFORMED},
    {"bytes */1000", 100, 200, 1000, FETCH_HDR_MALFORMED},
    {"", 100, 200, 1000, FETCH_HDR_MALFORMED},
    {NULL, 100, 200, 1000, FETCH_HDR_MALFORMED},
    {"bytes 100-199/1000", 100, 100, 1000, FETCH_HDR_WRONG_RANGE},
};

static void test_check_206(void)
{
	for (size_t i = 0; i < sizeof(d206_cases) / sizeof(d206_cases[0]);
	     i++) {
		const struct d206_case *c = &d206_cases[i];
		struct fetch_cr got;
		enum fetch_hdr_rc rc =
		    fetch_hdr_check_206(c->cr, c->start, c->end, c->size, &got);

		CHECK(rc == c->rc);
		if (rc != c->rc)
			fprintf(stderr, "  206 case %zu: %d\n", i, (int)rc);
		if (rc == FETCH_HDR_OK)
			CHECK_EQ_U64(got.b - got.a + 1, c->end - c->start);
	}
}

static void test_check_200_416(void)
{
	CHECK(fetch_hdr_check_200(1000, 1000) == FETCH_HDR_OK);
	CHECK(fetch_hdr_check_200(0, 0) == FETCH_HDR_OK);
	CHECK(fetch_hdr_check_200(-1, 1000) == FETCH_HDR_MALFORMED);
	CHECK(fetch_hdr_check_200(999, 1000) == FETCH_HDR_SIZE_CHANGED);
	CHECK(fetch_hdr_check_200(INT64_MAX, 1000) == FETCH_HDR_SIZE_CHANGED);
	CHECK(fetch_hdr_check_416("bytes */1000", 1000) == FETCH_HDR_STATUS);
	CHECK(fetch_hdr_check_416("bytes */999", 1000) ==
	      FETCH_HDR_SIZE_CHANGED);
	CHECK(fetch_hdr_check_416("bytes */99x", 1000) == FETCH_HDR_STATUS);
	CHECK(fetch_hdr_check_416(NULL, 1000) == FETCH_HDR_STATUS);
}

static const struct probe_case {
	long status;
	const char *cr;
	int64_t cl;
	uint64_t seen;
	enum fetch_hdr_rc rc;
	uint64_t size;
} probe_cases[] = {
    {206, "bytes 0-0/5242880", 1, 1, FETCH_HDR_OK, 5242880},
    {206, "bytes 0-0/" U64MAX, 1, 1, FETCH_HDR_OK, UINT64_MAX},
    {206, "bytes 0-0/" U64OVER, 1, 1, FETCH_HDR_NO_SIZE, 0},
    {206, "bytes 1-1/10", 1, 1, FETCH_HDR_NO_SIZE, 0},
    {206, "bytes 0-1/10", 2, 2, FETCH_HDR_NO_SIZE, 0},
    {206, "bytes 0-0/", 1, 1, FETCH_HDR_NO_SIZE, 0},
    {206, NULL, 1, 1, FETCH_HDR_NO_SIZE, 0},
    {416, "bytes */0", 0, 0, FETCH_HDR_OK, 0},
    {416, "bytes */10", 0, 0, FETCH_HDR_STATUS, 0},
    {416, NULL, 0, 0, FETCH_HDR_STATUS, 0},
    {200, NULL, 1, 1, FETCH_HDR_OK, 1},
    {200, NULL, 0, 0, FETCH_HDR_OK, 0},
    {200, NULL, 2, 2, FETCH_HDR_IGNORES_RANGE, 0},
    {200, NULL, -1, 2, FETCH_HDR_IGNORES_RANGE, 0},
    {200, NULL, -1, 1, FETCH_HDR_NO_SIZE, 0},
    {404, NULL, 10, 10, FETCH_HDR_STATUS, 0},
    {403, "bytes 0-0/10", 1, 1, FETCH_HDR_STATUS, 0},
    {503, NULL, -1, 0, FETCH_HDR_STATUS, 0},
};

static void test_probe(void)
{
	for (size_t i = 0; i < sizeof(probe_cases) / sizeof(probe_cases[0]);
	     i++) {
		const struct probe_case *c = &probe_cases[i];
		uint64_t size = 12345;
		enum fetch_hdr_rc rc = fetch_hdr_probe_size(
		    c->status, c->cr, c->cl, c->seen, &size);

		CHECK(rc == c->rc);
		if (rc != c->rc)
			fprintf(stderr, "  probe case %zu: %d\n", i, (int)rc);
		if (rc == FETCH_HDR_OK)
			CHECK_EQ_U64(size, c->size);
		else
			CHECK_EQ_U64(size, 12345); /* untouched */
	}
}

static void test_validators(void)
{
	char longv[FETCH_VALIDATOR_MAX + 2];
	const char *v = NULL;

	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	CHECK(fetch_hdr_validator_ok("\"abc\""));
	CHECK(fetch_hdr_validator_ok("W/\"abc\""));
	CHECK(fetch_hdr_validator_ok("Mon, 01 Jan 2024 00:00:00 GMT"));
	CHECK(!fetch_hdr_validator_ok(""));
	CHECK(!fetch_hdr_validator_ok(NULL));
	CHECK(!fetch_hdr_validator_ok("\"a\tb\""));
	CHECK(!fetch_hdr_validator_ok("\"a\x80\""));
	CHECK(!fetch_hdr_validator_ok(longv));
	longv[FETCH_VALIDATOR_MAX] = '\0';
	CHECK(fetch_hdr_validator_ok(longv));
	longv[FETCH_VALIDATOR_MAX] = 'a';

	CHECK(fetch_hdr_pick_validator("\"e\"", "lm", &v) == FETCH_PIN_ETAG &&
	      !strcmp(v, "\"e\""));
	CHECK(fetch_hdr_pick_validator(NULL, "lm", &v) == FETCH_PIN_LASTMOD &&
	      !strcmp(v, "lm"));
	/* an ETag too long to pin falls back to Last-Modified */
	CHECK(fetch_hdr_pick_validator(longv, "lm", &v) == FETCH_PIN_LASTMOD);
	CHECK(fetch_hdr_pick_validator(longv, NULL, &v) == FETCH_PIN_NONE &&
	      !strcmp(v, ""));
	CHECK(fetch_hdr_pick_validator(NULL, NULL, &v) == FETCH_PIN_NONE);

	CHECK(fetch_hdr_validator_same(FETCH_PIN_ETAG, "\"a\"", "\"a\"", "x"));
	CHECK(
	    !fetch_hdr_validator_same(FETCH_PIN_ETAG, "\"a\"", "\"b\"", NULL));
	CHECK(!fetch_hdr_validator_same(FETCH_PIN_ETAG, "\"a\"", "W/\"a\"",
					NULL));
	/* a response without the header is not a change */
	CHECK(fetch_hdr_validator_same(FETCH_PIN_ETAG, "\"a\"", NULL, "x"));
	CHECK(fetch_hdr_validator_same(FETCH_PIN_LASTMOD, "x", "\"b\"", "x"));
	CHECK(!fetch_hdr_validator_same(FETCH_PIN_LASTMOD, "x", NULL, "y"));
	CHECK(fetch_hdr_validator_same(FETCH_PIN_NONE, "", "\"b\"", "y"));
}

static void test_redirects(void)
{
	CHECK(fetch_hdr_https_downgrade("https://a/x", "http://b/x"));
	CHECK(fetch_hdr_https_downgrade("HTTPS://a/x", "HTTP://a/x"));
	CHECK(!fetch_hdr_https_downgrade("https://a/x", "https://b/x"));
	CHECK(!fetch_hdr_https_downgrade("http://a/x", "http://b/x"));
	CHECK(!fetch_hdr_https_downgrade("http://a/x", "https://b/x"));
	CHECK(!fetch_hdr_https_downgrade(NULL, "http://b/x"));
}

static void test_status_reason(void)
{
	static const struct {
		const char *line;
		size_t buflen;
		const char *want;
	} cases[] = {
	    {"HTTP/1.1 404 Not Found\r\n", 64, "Not Found"},
	    {"HTTP/2 503 \r\n", 64, ""},
	    {"HTTP/1.1 200 OK", 64, "OK"},
	    {"HTTP/1.1 500 A very long reason phrase\r\n", 8, "A very "},
	    {"HTTP/1.1 500 Reason\r\n", 1, ""},
	    {"Content-Type: text/plain\r\n", 64, "unchanged"},
	    {"HTTP", 64, "unchanged"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[64] = "unchanged";

		fetch_parse_status_reason(cases[i].line, strlen(cases[i].line),
					  buf, cases[i].buflen);
		CHECK(strcmp(buf, cases[i].want) == 0);
	}
	CHECK(strcmp(fetch_http_status_reason(404), "Not Found") == 0);
	CHECK(strcmp(fetch_http_status_reason(299), "") == 0);
}

/* fetch.h's error table, status by status. */
static const struct status_case {
	long status;
	int err;
	bool retry_open, retry_data;
} status_cases[] = {
    {400, -EIO, false, false},	   {401, -EACCES, false, true},
    {403, -EACCES, false, true},   {404, -ENOENT, false, false},
    {408, -ETIMEDOUT, true, true}, {410, -ENOENT, false, false},
    {416, -EIO, false, false},	   {429, -EIO, true, true},
    {500, -EIO, true, true},	   {501, -EIO, false, false},
    {502, -EIO, true, true},	   {503, -EIO, true, true},
    {504, -ETIMEDOUT, true, true}, {505, -EIO, false, false},
    {599, -EIO, true, true},	   {302, -EIO, false, false},
};

static void test_status_errno(void)
{
	for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]);
	     i++) {
		const struct status_case *c = &status_cases[i];

		CHECK(fetch_http_status_errno(c->status) == c->err);
		CHECK(fetch_http_status_retryable(c->status, false) ==
		      c->retry_open);
		CHECK(fetch_http_status_retryable(c->status, true) ==
		      c->retry_data);
		if (fetch_http_status_errno(c->status) != c->err)
			fprintf(stderr, "  status %ld\n", c->status);
	}
}

static const struct curl_case {
	CURLcode code;
	long oserr;
	int err;
	bool retry;
} curl_cases[] = {
    {CURLE_OK, 0, 0, false},
    {CURLE_OUT_OF_MEMORY, 0, -ENOMEM, false},
    {CURLE_OPERATION_TIMEDOUT, 0, -ETIMEDOUT, true},
    {CURLE_COULDNT_RESOLVE_HOST, 0, -EHOSTUNREACH, true},
    {CURLE_COULDNT_RESOLVE_PROXY, 0, -EHOSTUNREACH, false},
    {CURLE_COULDNT_CONNECT, ECONNREFUSED, -ECONNREFUSED, true},
    {CURLE_COULDNT_CONNECT, 0, -ECONNREFUSED, true},
    {CURLE_COULDNT_CONNECT, EHOSTUNREACH, -EHOSTUNREACH, true},
    {CURLE_COULDNT_CONNECT, ENETUNREACH, -EHOSTUNREACH, true},
    {CURLE_COULDNT_CONNECT, ETIMEDOUT, -ETIMEDOUT, true},
    {CURLE_RECV_ERROR, ECONNRESET, -ECONNRESET, true},
    {CURLE_SEND_ERROR, EPIPE, -ECONNRESET, true},
    {CURLE_GOT_NOTHING, 0, -ECONNRESET, true},
    {CURLE_HTTP2_STREAM, 0, -ECONNRESET, true},
    {CURLE_PARTIAL_FILE, 0, -EIO, true},
    {CURLE_PEER_FAILED_VERIFICATION, 0, -EIO, false},
    {CURLE_UNSUPPORTED_PROTOCOL, 0, -EIO, false},
    {CURLE_TOO_MANY_REDIRECTS, 0, -EIO, false},
};

static void test_curl_errno(void)
{
	for (size_t i = 0; i < sizeof(curl_cases) / sizeof(curl_cases[0]);
	     i++) {
		const struct curl_case *c = &curl_cases[i];
		int err = fetch_curl_errno(c->code, c->oserr);

		CHECK(err == c->err);
		CHECK(fetch_curl_retryable(c->code) == c->retry);
		/* EBADMSG is for integrity failures above fetch only */
		CHECK(err != -EBADMSG);
		if (err != c->err)
			fprintf(stderr, "  curl case %zu: %d\n", i, err);
	}
}

int main(void)
{
	test_status_errno();
	test_curl_errno();
	test_content_range();
	test_check_206();
	test_check_200_416();
	test_probe();
	test_validators();
	test_redirects();
	test_status_reason();
	return check_done();
}
