/* SPDX-License-Identifier: MIT */
/*
 * http_hdr.h - the pure checks of an HTTP response (no transfer, no
 * handle): status and libcurl codes to errno, Content-Range parsing and
 * checking against the range asked and the size pinned, the probe's
 * reading of the size, validators (ETag, Last-Modified) and redirects.
 * Every function only reads its arguments, so all of it is unit-tested
 * (tests/unit/test_http_hdr.c) and fuzzed (tests/fuzz/fuzz_http.c).
 * Thread safe. Header values are C strings as libcurl gives them (no
 * CR/LF, leading and trailing blanks removed); NULL means "no such
 * header".
 */
#ifndef SFFS_HTTP_HDR_H
#define SFFS_HTTP_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest validator (ETag or Last-Modified value) pinned or compared. */
#define FETCH_VALIDATOR_MAX 256

/* What a response check found; the caller turns it into errno and a
 * message (the check stays free of logging and policy). */
enum fetch_hdr_rc {
	FETCH_HDR_OK = 0,
	FETCH_HDR_MALFORMED,	 /* header missing, truncated or overflowing */
	FETCH_HDR_WRONG_RANGE,	 /* well-formed, but not the bytes asked */
	FETCH_HDR_SIZE_CHANGED,	 /* the total is not the pinned size */
	FETCH_HDR_NO_SIZE,	 /* the probe's answer gives no size */
	FETCH_HDR_IGNORES_RANGE, /* a 200 with more than one byte to a range */
	FETCH_HDR_STATUS,	 /* a status that is an error in itself */
};

/* Which validator the probe pinned. */
enum fetch_pin { FETCH_PIN_NONE, FETCH_PIN_ETAG, FETCH_PIN_LASTMOD };

/* A Content-Range as parsed: bytes a-b of total. */
struct fetch_cr {
	uint64_t a, b, total;
};

/*
 * Parses a Content-Range header value: "bytes A-B/T" when want_range (sets
 * *a, *b, *total; A <= B), else the 416 form "bytes * /T" (written
 * without the space; a and b are not touched). Numbers are decimal and must
 * fit 64 bits; nothing may follow T. Returns 0, or -EIO for NULL or
 * anything else.
 */
int fetch_parse_content_range(const char *s, bool want_range, uint64_t *a,
			      uint64_t *b, uint64_t *total);

/*
 * If the n bytes at data (not NUL terminated) are a status line
 * "HTTP/x NNN reason\r\n", copies the reason phrase (cut to reasonlen - 1
 * bytes) NUL terminated to reason; else leaves reason as it is.
 */
void fetch_parse_status_reason(const char *data, size_t n, char *reason,
			       size_t reasonlen);

/* The errno an HTTP error status stands for (fetch.h has the table). */
int fetch_http_status_errno(long status);
/* Whether an error status may go away if asked again: 408, 429 and 5xx
 * but 501/505; with data (a range or stream of an artifact already
 * opened, so known to exist) 401/403 too. */
bool fetch_http_status_retryable(long status, bool data);
/* The errno a libcurl result (a CURLcode) stands for; oserr is
 * CURLINFO_OS_ERRNO (0: none). 0 for CURLE_OK. */
int fetch_curl_errno(int code, long oserr);
/* Whether a libcurl result is worth another attempt. */
bool fetch_curl_retryable(int code);

/* The phrase RFC 9110 gives status (for messages when the server sent
 * none), or "". */
const char *fetch_http_status_reason(long status);

/*
 * A 206 to a request of bytes [start, end): OK with *got set (bytes
 * got->a .. got->b of got->total), MALFORMED (no or bad Content-Range),
 * SIZE_CHANGED (total != size; checked before the range) or WRONG_RANGE.
 * got is filled whenever the header parses.
 */
enum fetch_hdr_rc fetch_hdr_check_206(const char *content_range, uint64_t start,
				      uint64_t end, uint64_t size,
				      struct fetch_cr *got);

/* A 200 to a range request after the probe (a CDN edge answering from a
 * whole-object cache): OK when its Content-Length (-1: none) is the
 * pinned size, MALFORMED without one, else SIZE_CHANGED. */
enum fetch_hdr_rc fetch_hdr_check_200(int64_t content_length, uint64_t size);

/* A 416 to a data request: SIZE_CHANGED when its "bytes * /T" names
 * another size than the pinned one, else STATUS (an error as such). */
enum fetch_hdr_rc fetch_hdr_check_416(const char *content_range, uint64_t size);

/*
 * The probe ("Range: bytes=0-0") answered status: OK with *size (206 with
 * "bytes 0-0/T"; 416 with "bytes * /0"; 200 with Content-Length 0 or 1),
 * IGNORES_RANGE (200 with a longer or unknown-length body: body_seen > 1),
 * NO_SIZE (a 206 or 200 that gives no usable size) or STATUS (anything
 * else, a 416 for a non-empty artifact included).
 */
enum fetch_hdr_rc fetch_hdr_probe_size(long status, const char *content_range,
				       int64_t content_length,
				       uint64_t body_seen, uint64_t *size);

/* A validator as sffs pins and compares it: 1..FETCH_VALIDATOR_MAX bytes
 * of printable ASCII or blanks. */
bool fetch_hdr_validator_ok(const char *v);

/* The validator the probe pins: the ETag if usable, else Last-Modified if
 * usable, else none; *value points into one of the arguments, or "". */
enum fetch_pin fetch_hdr_pick_validator(const char *etag, const char *lm,
					const char **value);

/* Whether a response with these headers still matches the validator
 * pinned (pin, pinned): true when it carries the same one or none of
 * that kind (a server that drops the header is not a change). */
bool fetch_hdr_validator_same(enum fetch_pin pin, const char *pinned,
			      const char *etag, const char *lm);

/* True when a redirect from `from` to `to` goes from https to plain http
 * (always refused: it would drop TLS from an artifact asked over TLS). */
bool fetch_hdr_https_downgrade(const char *from, const char *to);

#endif
