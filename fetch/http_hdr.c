/* SPDX-License-Identifier: MIT */
/*
 * http_hdr.c - the pure checks of HTTP responses (http_hdr.h). No
 * transfer happens here: libcurl's header is included for its result
 * codes only.
 */
#include "http_hdr.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

/* ---- errno mapping ---------------------------------------------------- */

int fetch_http_status_errno(long status)
{
	switch (status) {
	case 404:
	case 410:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 408:
	case 504:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

bool fetch_http_status_retryable(long status, bool data)
{
	if (status == 408 || status == 429)
		return true;
	/* an artifact already opened exists: a 401/403 now is a WAF or a
	 * throttle, not "missing" */
	if (data && (status == 401 || status == 403))
		return true;
	return status >= 500 && status != 501 && status != 505;
}

/* A connection that failed to open: refused, or no route to the host. */
static int connect_errno(long oserr)
{
	switch (oserr) {
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return -EHOSTUNREACH;
	case ETIMEDOUT:
		return -ETIMEDOUT;
	default:
		return -ECONNREFUSED;
	}
}

int fetch_curl_errno(int code, long oserr)
{
	switch ((CURLcode)code) {
	case CURLE_OK:
		return 0;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return connect_errno(oserr);
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -ECONNRESET;
	default:
		/* short bodies (CURLE_PARTIAL_FILE), TLS, protocol errors */
		return -EIO;
	}
}

bool fetch_curl_retryable(int code)
{
	switch ((CURLcode)code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

const char *fetch_http_status_reason(long status)
{
	static const struct {
		long status;
		const char *reason;
	} tab[] = {
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {408, "Request Timeout"},
	    {410, "Gone"},
	    {416, "Range Not Satisfiable"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (tab[i].status == status)
			return tab[i].reason;
	return "";
}

/* ---- status line and Content-Range -------------------------------------- */

void fetch_parse_status_reason(const char *data, size_t n, char *reason,
			       size_t reasonlen)
{
	size_t i = 0, k = 0;

	if (reasonlen == 0 || n < 5 || memcmp(data, "HTTP/", 5) != 0)
		return;
	while (i < n && data[i] != ' ')
		i++;
	while (i < n && data[i] == ' ')
		i++;
	while (i < n && data[i] >= '0' && data[i] <= '9')
		i++;
	while (i < n && data[i] == ' ')
		i++;
	while (i < n && data[i] != '\r' && data[i] != '\n' && k + 1 < reasonlen)
		reason[k++] = data[i++];
	reason[k] = '\0';
}

static int parse_u64(const char **s, char stop, uint64_t *v)
{
	const char *p = *s;
	uint64_t n = 0;

	if (*p < '0' || *p > '9')
		return -EIO;
	for (; *p >= '0' && *p <= '9'; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (n > (UINT64_MAX - d) / 10)
			return -EIO;
		n = n * 10 + d;
	}
	if (*p != stop)
		return -EIO;
	*s = p + 1;
	*v = n;
	return 0;
}

int fetch_parse_content_range(const char *s, bool want_range, uint64_t *a,
			      uint64_t *b, uint64_t *total)
{
	if (!s || strncmp(s, "bytes ", 6) != 0)
		return -EIO;
	s += 6;
	if (want_range) {
		if (parse_u64(&s, '-', a) < 0 || parse_u64(&s, '/', b) < 0 ||
		    *a > *b)
			return -EIO;
	} else if (strncmp(s, "*/", 2) == 0) {
		s += 2;
	} else {
		return -EIO;
	}
	return parse_u64(&s, '\0', total);
}

/* ---- data responses ----------------------------------------------------- */

enum fetch_hdr_rc fetch_hdr_check_206(const char *content_range, uint64_t start,
				      uint64_t end, uint64_t size,
				      struct fetch_cr *got)
{
	if (fetch_parse_content_range(content_range, true, &got->a, &got->b,
				      &got->total) < 0)
		return FETCH_HDR_MALFORMED;
	if (got->total != size)
		return FETCH_HDR_SIZE_CHANGED;
	if (start >= end || got->a != start || got->b != end - 1)
		return FETCH_HDR_WRONG_RANGE;
	return FETCH_HDR_OK;
}

enum fetch_hdr_rc fetch_hdr_check_200(int64_t content_length, uint64_t size)
{
	if (content_length < 0)
		return FETCH_HDR_MALFORMED;
	return (uint64_t)content_length == size ? FETCH_HDR_OK
						: FETCH_HDR_SIZE_CHANGED;
}

enum fetch_hdr_rc fetch_hdr_check_416(const char *content_range, uint64_t size)
{
	uint64_t total;

	if (fetch_parse_content_range(content_range, false, NULL, NULL,
				      &total) == 0 &&
	    total != size)
		return FETCH_HDR_SIZE_CHANGED;
	return FETCH_HDR_STATUS;
}

/* A 200 to "Range: bytes=0-0" is fine only for an artifact of 0 or 1
 * bytes; for anything bigger, every read would download from byte 0. */
static enum fetch_hdr_rc probe_200(int64_t cl, uint64_t body_seen,
				   uint64_t *size)
{
	if (cl > 1 || (cl < 0 && body_seen > 1))
		return FETCH_HDR_IGNORES_RANGE;
	if (cl < 0)
		return FETCH_HDR_NO_SIZE;
	*size = (uint64_t)cl;
	return FETCH_HDR_OK;
}

enum fetch_hdr_rc fetch_hdr_probe_size(long status, const char *content_range,
				       int64_t content_length,
				       uint64_t body_seen, uint64_t *size)
{
	uint64_t a = 0, b = 0, t = 0;

	if (status == 206) {
		if (fetch_parse_content_range(content_range, true, &a, &b, &t) <
			0 ||
		    a != 0 || b != 0)
			return FETCH_HDR_NO_SIZE;
		*size = t;
		return FETCH_HDR_OK;
	}
	if (status == 416) {
		if (fetch_parse_content_range(content_range, false, NULL, NULL,
					      &t) < 0 ||
		    t != 0)
			return FETCH_HDR_STATUS;
		*size = 0;
		return FETCH_HDR_OK;
	}
	if (status == 200)
		return probe_200(content_length, body_seen, size);
	return FETCH_HDR_STATUS;
}

/* ---- validators and redirects ------------------------------------------- */

bool fetch_hdr_validator_ok(const char *v)
{
	size_t n;

	if (!v)
		return false;
	for (n = 0; v[n]; n++) {
		unsigned char c = (unsigned char)v[n];

		if (n >= FETCH_VALIDATOR_MAX || c < 0x20 || c > 0x7e)
			return false;
	}
	return n > 0;
}

enum fetch_pin fetch_hdr_pick_validator(const char *etag, const char *lm,
					const char **value)
{
	if (fetch_hdr_validator_ok(etag)) {
		*value = etag;
		return FETCH_PIN_ETAG;
	}
	if (fetch_hdr_validator_ok(lm)) {
		*value = lm;
		return FETCH_PIN_LASTMOD;
	}
	*value = "";
	return FETCH_PIN_NONE;
}

bool fetch_hdr_validator_same(enum fetch_pin pin, const char *pinned,
			      const char *etag, const char *lm)
{
	const char *now = pin == FETCH_PIN_ETAG ? etag : lm;

	if (pin == FETCH_PIN_NONE || !now)
		return true;
	return strcmp(now, pinned) == 0;
}

bool fetch_hdr_https_downgrade(const char *from, const char *to)
{
	return from && to && strncasecmp(from, "https://", 8) == 0 &&
	       strncasecmp(to, "https://", 8) != 0;
}
