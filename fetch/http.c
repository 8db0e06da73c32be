/* SPDX-License-Identifier: MIT */
/*
 * http.c - the libcurl backend's transfers: the probe that pins an
 * artifact, ranges, streams and whole documents, each run as attempts
 * with retries and back-off on a handle taken from the process's pool
 * (http_pool.c). Every response is checked (http_hdr.c) against the
 * identity pinned by the probe before its first byte is delivered.
 */
#include "http_i.h"

#include "sffs/log.h"
#include "sffs/util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A whole document (fetch_document) as it arrives. */
struct doc_buf {
	char *p;
	size_t len, cap, max;
};

/* One call of fetch_range/fetch_stream (or the probe), across attempts. */
struct xfer {
	struct fetch *f;
	struct conn *conn;
	unsigned flags;
	bool probe;
	bool head;	      /* fetch_document: HEAD, no body */
	struct doc_buf *doc;  /* fetch_document: the body, not a range */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; 0: none */
	uint64_t pos, end;    /* bytes [pos, end) are still to deliver */
	fetch_sink sink;
	void *arg;
	int sink_rc; /* what the sink returned to stop us */
	/* per attempt */
	uint64_t start; /* this request asked for [start, end) */
	uint64_t skip;	/* 200: body bytes to drop before pos */
	uint64_t left;	/* body bytes this response may still carry */
	uint64_t got;	/* probe: body bytes seen */
	bool checked;	/* response headers validated */
	bool done;	/* we stopped a transfer on purpose */
	bool retry;	/* err is worth another attempt */
	int err;	/* -errno decided while checking */
	uint64_t retry_after_ms;
	char reason[64];		/* status line reason phrase */
	char msg[1024];			/* what went wrong, one line */
	char where[UTIL_URL_SHOWN_MAX]; /* effective_url(), redacted */
	/* route.c: where this attempt goes, and how it failed */
	struct route_pick rp;
	enum route_fault fault;
	unsigned hops; /* failovers during this call */
};

/* ---- messages ---------------------------------------------------------- */

/* The URL last tried (a redirect's target, maybe), with its secrets. */
static const char *raw_effective_url(struct xfer *x)
{
	char *u = NULL;

	curl_easy_getinfo(x->conn->c, CURLINFO_EFFECTIVE_URL, &u);
	return u ? u : x->f->url;
}

/* The URL last tried as messages may show it (util_url_redact). */
static const char *effective_url(struct xfer *x)
{
	return util_url_redact(raw_effective_url(x), x->where,
			       sizeof(x->where));
}

/* "host:port" of the URL last tried, for connect errors. */
static void host_port(struct xfer *x, char *out, size_t outlen)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL;

	snprintf(out, outlen, "%s", effective_url(x));
	if (!u)
		return;
	if (curl_url_set(u, CURLUPART_URL, out, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
		CURLUE_OK)
		snprintf(out, outlen, "%s:%s", host, port);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

static const char *curl_detail(struct xfer *x, CURLcode rc)
{
	return x->conn->errbuf[0] ? x->conn->errbuf : curl_easy_strerror(rc);
}

static void curl_message(struct xfer *x, CURLcode rc, long oserr)
{
	char hp[256];

	if (rc == CURLE_UNSUPPORTED_PROTOCOL &&
	    fetch_hdr_https_downgrade(x->f->url, raw_effective_url(x))) {
		snprintf(
		    x->msg, sizeof(x->msg),
		    "refusing redirect from https to http: %.480s -> %.480s",
		    x->f->shown, effective_url(x));
		return;
	}
	host_port(x, hp, sizeof(hp));
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		if (strrchr(hp, ':') && !strstr(hp, "://"))
			*strrchr(hp, ':') = '\0';
		snprintf(x->msg, sizeof(x->msg), "could not resolve host %s",
			 hp);
		break;
	case CURLE_COULDNT_CONNECT:
		snprintf(x->msg, sizeof(x->msg), "cannot connect to %s: %s", hp,
			 oserr ? strerror((int)oserr) : curl_detail(x, rc));
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_ISSUER_ERROR:
		snprintf(x->msg, sizeof(x->msg),
			 "TLS certificate problem with %s: %s", hp,
			 curl_detail(x, rc));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(x->msg, sizeof(x->msg), "timed out talking to %s: %s",
			 hp, curl_detail(x, rc));
		break;
	default:
		snprintf(x->msg, sizeof(x->msg), "%s: %s", effective_url(x),
			 curl_detail(x, rc));
		break;
	}
}

static int fail(struct xfer *x, int err, bool retry, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records why this attempt failed; returns err. */
static int fail(struct xfer *x, int err, bool retry, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof(x->msg), fmt, ap);
	va_end(ap);
	x->err = err;
	x->retry = retry;
	return err;
}

static int status_error(struct xfer *x, long status)
{
	const char *reason =
	    x->reason[0] ? x->reason : fetch_http_status_reason(status);

	/* 5xx is the server's fault, and so is a 404 of an artifact
	 * already opened (known to exist): another server may have it */
	if ((status >= 500 && status != 501 && status != 505) ||
	    ((status == 404 || status == 410) && !x->probe && !x->doc))
		x->fault = ROUTE_HOST;
	return fail(x, fetch_http_status_errno(status),
		    fetch_http_status_retryable(status, !x->probe && !x->doc),
		    "HTTP %ld%s%s: %s", status, reason[0] ? " " : "", reason,
		    effective_url(x));
}

/* ---- response checks --------------------------------------------------- */

static const char *header(struct xfer *x, const char *name)
{
	struct curl_header *h = NULL;

	if (curl_easy_header(x->conn->c, name, 0, CURLH_HEADER, -1, &h) !=
	    CURLHE_OK)
		return NULL;
	return h->value;
}

static int check_identity(struct xfer *x)
{
	struct http_priv *h = x->f->priv;
	const char *etag = header(x, "ETag"), *lm = header(x, "Last-Modified");
	const char *name = h->pin == FETCH_PIN_ETAG ? "ETag" : "Last-Modified";
	const char *now = h->pin == FETCH_PIN_ETAG ? etag : lm;

	if (fetch_hdr_validator_same(h->pin, x->f->identity, etag, lm))
		return 0;
	/* the size was checked first: same size, block digests prove
	 * every byte, so a new validator is only a new label */
	if (fetch_adopting(x->f) && fetch_hdr_validator_ok(now))
		return fetch_adopt(x->f, name, now) < 0
			   ? fail(x, -ENOMEM, false, "out of memory")
			   : 0;
	fetch_changed(x->f, "%s was %s, now %.*s", name, x->f->identity,
		      FETCH_VALIDATOR_MAX, now);
	return fail(x, -EIO, false,
		    "artifact changed on the server: %s was %s, now %.*s", name,
		    x->f->identity, FETCH_VALIDATOR_MAX, now);
}

/* -EIO, or -ESTALE under adoption (the size is the identity then). */
static int size_changed(struct xfer *x, uint64_t total)
{
	fetch_changed(x->f, "size was %" PRIu64 ", now %" PRIu64, x->f->size,
		      total);
	return fail(x, fetch_adopting(x->f) ? -ESTALE : -EIO, false,
		    "artifact changed on the server: size was %" PRIu64
		    ", now %" PRIu64,
		    x->f->size, total);
}

static int check_206(struct xfer *x)
{
	const char *cr = header(x, "Content-Range");
	struct fetch_cr got;

	switch (fetch_hdr_check_206(cr, x->start, x->end, x->f->size, &got)) {
	case FETCH_HDR_OK:
		break;
	case FETCH_HDR_SIZE_CHANGED:
		return size_changed(x, got.total);
	case FETCH_HDR_WRONG_RANGE:
		return fail(
		    x, -EIO, false,
		    "server sent bytes %" PRIu64 "-%" PRIu64
		    " for a request of bytes %" PRIu64 "-%" PRIu64 " from %s",
		    got.a, got.b, x->start, x->end - 1, effective_url(x));
	default:
		return fail(x, -EIO, false,
			    "bad Content-Range \"%.*s\" from %s", 128,
			    cr ? cr : "(none)", effective_url(x));
	}
	x->left = got.b - got.a + 1;
	return check_identity(x);
}

static int check_200(struct xfer *x)
{
	curl_off_t cl = -1;

	curl_easy_getinfo(x->conn->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	switch (fetch_hdr_check_200(cl, x->f->size)) {
	case FETCH_HDR_OK:
		break;
	case FETCH_HDR_SIZE_CHANGED:
		return size_changed(x, (uint64_t)cl);
	default:
		return fail(x, -EIO, false,
			    "server ignored Range and gave no Content-Length: "
			    "%s",
			    effective_url(x));
	}
	x->skip = x->start;
	x->left = (uint64_t)cl;
	return check_identity(x);
}

/* Validates the headers of a data response before its body is used. */
static int check_response(struct xfer *x)
{
	const char *cr = header(x, "Content-Range");
	long status = 0;
	uint64_t total = 0;

	x->checked = true;
	curl_easy_getinfo(x->conn->c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 206)
		return check_206(x);
	if (status == 200)
		return check_200(x);
	if (status == 416 &&
	    fetch_hdr_check_416(cr, x->f->size) == FETCH_HDR_SIZE_CHANGED &&
	    fetch_parse_content_range(cr, false, NULL, NULL, &total) == 0)
		return size_changed(x, total);
	return status_error(x, status);
}

/* ---- callbacks --------------------------------------------------------- */

static size_t probe_write(struct xfer *x, size_t n)
{
	x->got += n;
	if (x->got <= 1)
		return n;
	x->done = true; /* a 200 or an error body: headers are enough */
	return 0;
}

static size_t doc_write(struct xfer *x, const char *data, size_t n);

static size_t http_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, used = 0, want;

	atomic_fetch_add(&x->f->bytes, n);
	if (x->doc)
		return doc_write(x, data, n);
	if (x->probe)
		return probe_write(x, n);
	if (!x->checked && check_response(x) < 0)
		return 0;
	if (n > x->left) {
		fail(x, -EIO, false, "server sent more than asked: %s",
		     effective_url(x));
		return 0;
	}
	x->left -= n;
	if (x->skip) {
		used = x->skip < n ? (size_t)x->skip : n;
		x->skip -= used;
	}
	want = n - used;
	if (want > x->end - x->pos)
		want = (size_t)(x->end - x->pos);
	if (want) {
		x->sink_rc = x->sink(x->arg, data + used, want);
		if (x->sink_rc)
			return 0;
		x->pos += want;
	}
	if (x->pos == x->end && x->left > 0) {
		x->done = true; /* a 200: the rest of the body is not ours */
		return 0;
	}
	return n;
}

/* Keeps the reason phrase of the last status line, for messages. */
static size_t http_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	fetch_parse_status_reason(data, n, x->reason, sizeof(x->reason));
	return n;
}

/* ---- attempts ---------------------------------------------------------- */

/* CURLOPT_TIMEOUT_MS for an attempt: the time left before the deadline
 * (at least 1 ms, as 0 means none), or 0 without a deadline. */
static long time_left_ms(const struct xfer *x)
{
	uint64_t now, ms;

	if (!x->deadline_ns)
		return 0;
	now = fetch_now_ns();
	if (now >= x->deadline_ns)
		return 1;
	ms = (x->deadline_ns - now + 999999) / 1000000;
	return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

/* Runs one request for [x->pos, x->end); fills x->msg on failure. */
static CURLcode perform(struct xfer *x, const char *range)
{
	CURL *c = x->conn->c;
	const char *url = x->rp.url ? x->rp.url : x->f->url;
	curl_off_t ra = 0;
	CURLcode rc;

	x->start = x->pos;
	x->skip = x->left = x->got = 0;
	x->checked = x->done = x->retry = false;
	x->err = 0;
	x->fault = ROUTE_NONE;
	x->retry_after_ms = 0;
	x->reason[0] = x->msg[0] = x->conn->errbuf[0] = '\0';
	/* all set every time: a pooled handle keeps the last caller's
	 * values, and the last caller may have read another artifact */
	curl_easy_setopt(c, CURLOPT_URL, url);
	/* an https URL is never followed to plain http */
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
			 strncasecmp(url, "https://", 8) == 0 ? "https"
							      : "http,https");
	/* "" is DIRECT; NULL leaves libcurl's (http_proxy, ...) */
	curl_easy_setopt(c, CURLOPT_PROXY,
			 x->rp.has_proxy ? x->rp.proxy : NULL);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
			 (long)x->f->opts.connect_timeout_s);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 (long)x->f->opts.low_speed_time_s);
	curl_easy_setopt(c, CURLOPT_RANGE, range);
	if (x->head)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, time_left_ms(x));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER,
			 (x->flags & FETCH_NOCACHE) ? http_pool_nocache()
						    : NULL);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	atomic_fetch_add(&x->f->requests, 1);
	rc = curl_easy_perform(c);
	if (curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0)
		x->retry_after_ms = (uint64_t)ra * 1000;
	return rc;
}

static int curl_error(struct xfer *x, CURLcode rc)
{
	long oserr = 0;

	curl_easy_getinfo(x->conn->c, CURLINFO_OS_ERRNO, &oserr);
	x->err = fetch_curl_errno(rc, oserr);
	x->retry = fetch_curl_retryable(rc);
	if (rc == CURLE_COULDNT_RESOLVE_PROXY)
		x->fault = ROUTE_PROXY;
	else if (rc == CURLE_COULDNT_RESOLVE_HOST)
		x->fault = ROUTE_HOST;
	else if (x->retry)
		x->fault = ROUTE_TRANSPORT;
	curl_message(x, rc, oserr);
	return x->err;
}

static int data_attempt(struct xfer *x)
{
	char range[64];
	CURLcode rc;

	snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, x->pos,
		 x->end - 1);
	rc = perform(x, range);
	if (x->sink_rc)
		return x->sink_rc;
	if (x->err)
		return x->err;
	if (rc != CURLE_OK && !x->done)
		return curl_error(x, rc);
	if (!x->checked && check_response(x) < 0)
		return x->err;
	if (x->pos < x->end) {
		x->fault = ROUTE_TRANSPORT;
		return fail(
		    x, -EIO, true,
		    "short body: got %" PRIu64 " of %" PRIu64 " bytes from %s",
		    x->pos - x->start, x->end - x->start, effective_url(x));
	}
	return 0;
}

static int pin_identity(struct xfer *x)
{
	struct http_priv *h = x->f->priv;
	const char *v;

	h->pin = fetch_hdr_pick_validator(header(x, "ETag"),
					  header(x, "Last-Modified"), &v);
	free(x->f->identity);
	x->f->identity = strdup(v);
	return x->f->identity ? 0 : fail(x, -ENOMEM, false, "out of memory");
}

static int probe_size(struct xfer *x, long status, uint64_t *size)
{
	curl_off_t cl = -1;

	curl_easy_getinfo(x->conn->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	switch (fetch_hdr_probe_size(status, header(x, "Content-Range"), cl,
				     x->got, size)) {
	case FETCH_HDR_OK:
		return 0;
	case FETCH_HDR_IGNORES_RANGE:
		return fail(x, -EIO, false,
			    "server ignores Range requests (answered 200 to a "
			    "range request): every read would download from "
			    "byte 0: %s",
			    effective_url(x));
	case FETCH_HDR_STATUS:
		return status_error(x, status);
	default:
		return fail(x, -EIO, false,
			    "server did not give the size of %s",
			    effective_url(x));
	}
}

static int probe_attempt(struct xfer *x)
{
	long status = 0;
	CURLcode rc;

	rc = perform(x, "0-0");
	if (rc != CURLE_OK && !x->done)
		return curl_error(x, rc);
	curl_easy_getinfo(x->conn->c, CURLINFO_RESPONSE_CODE, &status);
	if (probe_size(x, status, &x->f->size) < 0)
		return x->err;
	return pin_identity(x);
}

/* -ETIMEDOUT, keeping what the last attempt said. */
static int deadline_fail(struct xfer *x)
{
	char last[sizeof(x->msg)];

	snprintf(last, sizeof(last), "%s", x->msg);
	return fail(x, -ETIMEDOUT, false, "deadline reached%s%s",
		    last[0] ? " after: " : "", last);
}

/* Runs attempt until it succeeds, fails for good, retries run out or the
 * deadline comes. A request that delivered bytes before failing resumes
 * where it stopped and starts a fresh count of retries. */
static int run(struct xfer *x, int (*attempt)(struct xfer *))
{
	struct fetch *f = x->f;
	unsigned tries = 0;
	int rc;

	x->conn = http_pool_get(f);
	if (!x->conn)
		return fail(x, -ENOMEM, false, "out of memory");
	for (;;) {
		uint64_t before = x->pos;
		bool moved;

		if (x->deadline_ns && fetch_now_ns() >= x->deadline_ns) {
			rc = deadline_fail(x);
			break;
		}
		route_pick_free(&x->rp);
		if (route_pick(f->url, &x->rp) < 0) {
			rc = fail(x, -ENOMEM, false, "out of memory");
			break;
		}
		rc = attempt(x);
		if (rc == 0 || x->sink_rc)
			break;
		/* another server or proxy is tried at once, each once;
		 * then the usual retries with back-off */
		moved = route_fault(&x->rp, x->fault, x->msg) &&
			x->hops++ < x->rp.routes;
		if (!x->retry && !moved)
			break;
		if (x->pos > before)
			tries = 0;
		if (tries >= f->opts.retries)
			break;
		if (!moved && fetch_backoff(f, tries, x->retry_after_ms,
					    x->deadline_ns) < 0) {
			rc = deadline_fail(x);
			break;
		}
		log_warn("%s; retry %u of %u", x->msg, ++tries,
			 f->opts.retries);
		atomic_fetch_add(&f->retries, 1);
	}
	http_pool_put(x->conn);
	x->conn = NULL;
	route_pick_free(&x->rp);
	/* a deadline that passed with nothing failing says nothing */
	if (!x->sink_rc && (!rc || x->fault != ROUTE_NONE))
		route_result(f->shown, rc, x->msg);
	return rc;
}

/* ---- backend ------------------------------------------------------------ */

static int http_open(struct fetch *f, char *err, size_t errlen)
{
	struct xfer x = {.f = f, .probe = true};
	int rc = http_priv_new(f, err, errlen);

	if (rc < 0)
		return rc;
	rc = run(&x, probe_attempt);
	if (rc < 0)
		snprintf(err, errlen, "%s", x.msg);
	return rc;
}

int fetch_http_open_pinned(struct fetch *f, const struct fetch_pinned *pinned,
			   char *err, size_t errlen)
{
	const char *v = pinned->identity ? pinned->identity : "";
	struct http_priv *h;
	int rc = http_priv_new(f, err, errlen);

	if (rc < 0)
		return rc;
	h = f->priv;
	/* as the probe would have picked it: an ETag is quoted */
	h->pin = !v[0]					 ? FETCH_PIN_NONE
		 : v[0] == '"' || !strncmp(v, "W/\"", 3) ? FETCH_PIN_ETAG
							 : FETCH_PIN_LASTMOD;
	f->size = pinned->size;
	f->identity = strdup(v);
	if (!f->identity) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* ---- whole documents (listings, probes, signatures) ------------------- */

static size_t doc_write(struct xfer *x, const char *data, size_t n)
{
	struct doc_buf *d = x->doc;
	long status = 0;
	char *p;
	size_t cap;

	curl_easy_getinfo(x->conn->c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		x->done = true; /* an error body: the status says enough */
		return 0;
	}
	if (n > d->max - d->len) {
		fail(x, -EFBIG, false, "%s is larger than %zu bytes",
		     effective_url(x), d->max);
		return 0;
	}
	if (d->len + n + 1 > d->cap) {
		cap = d->cap ? d->cap : 16384;
		while (cap < d->len + n + 1)
			cap *= 2;
		p = realloc(d->p, cap);
		if (!p) {
			fail(x, -ENOMEM, false, "out of memory");
			return 0;
		}
		d->p = p;
		d->cap = cap;
	}
	memcpy(d->p + d->len, data, n);
	d->len += n;
	d->p[d->len] = '\0';
	return n;
}

static int doc_attempt(struct xfer *x)
{
	long status = 0;
	CURLcode rc;

	x->doc->len = 0;
	rc = perform(x, NULL);
	if (x->err)
		return x->err;
	if (rc != CURLE_OK && !x->done)
		return curl_error(x, rc);
	curl_easy_getinfo(x->conn->c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return status_error(x, status);
	return 0;
}

int fetch_http_document(struct fetch *f, bool head, size_t max, char **body,
			size_t *len, char *err, size_t errlen)
{
	struct doc_buf d = {.max = max};
	struct xfer x = {.f = f, .head = head, .doc = &d};
	int rc = http_priv_new(f, err, errlen);

	if (rc < 0)
		return rc;
	rc = run(&x, doc_attempt);
	if (rc < 0) {
		snprintf(err, errlen, "%s", x.msg);
		free(d.p);
		return rc;
	}
	if (!d.p) {
		d.p = strdup("");
		if (!d.p)
			return -ENOMEM;
	}
	*body = d.p;
	*len = d.len;
	return 0;
}

static int mem_sink(void *arg, const void *data, size_t len)
{
	unsigned char **p = arg;

	memcpy(*p, data, len);
	*p += len;
	return 0;
}

static int http_fetch(struct fetch *f, uint64_t off, uint64_t end,
		      fetch_sink sink, void *arg, unsigned flags,
		      uint64_t deadline_ns)
{
	struct xfer x = {
	    .f = f,
	    .flags = flags,
	    .deadline_ns = deadline_ns,
	    .pos = off,
	    .end = end,
	    .sink = sink,
	    .arg = arg,
	};
	int rc = run(&x, data_attempt);

	if (rc < 0 && !x.sink_rc) {
		log_err("%s: bytes %" PRIu64 "-%" PRIu64 ": %s (%s)", f->shown,
			off, end - 1, x.msg, strerror(-rc));
		atomic_fetch_add(&f->errors, 1);
	}
	return rc;
}

static int http_range(struct fetch *f, uint64_t off, size_t len, void *buf,
		      unsigned flags, uint64_t deadline_ns)
{
	unsigned char *p = buf;

	/* data_attempt never delivers past end, so p stays in buf */
	return http_fetch(f, off, off + len, mem_sink, &p, flags, deadline_ns);
}

static int http_stream(struct fetch *f, uint64_t off, uint64_t end,
		       fetch_sink sink, void *arg)
{
	return http_fetch(f, off, end, sink, arg, 0, 0);
}

/* Where a scattered read's next byte goes. */
struct iov_pos {
	const struct fetch_iov *iov;
	size_t n, k, at;
};

/* Bytes come in order and never past the range (as mem_sink's). */
static int iov_sink(void *arg, const void *data, size_t len)
{
	struct iov_pos *p = arg;
	const unsigned char *d = data;

	while (len && p->k < p->n) {
		size_t m = p->iov[p->k].len - p->at;

		if (m > len)
			m = len;
		memcpy((unsigned char *)p->iov[p->k].base + p->at, d, m);
		d += m;
		len -= m;
		p->at += m;
		if (p->at == p->iov[p->k].len) {
			p->k++;
			p->at = 0;
		}
	}
	return len ? -EIO : 0;
}

static int http_range_iov(struct fetch *f, uint64_t off,
			  const struct fetch_iov *iov, size_t n, unsigned flags,
			  uint64_t deadline_ns)
{
	struct iov_pos p = {.iov = iov, .n = n};
	uint64_t total = 0;
	size_t k;

	for (k = 0; k < n; k++)
		total += iov[k].len;
	return http_fetch(f, off, off + total, iov_sink, &p, flags,
			  deadline_ns);
}

const struct fetch_backend fetch_http_backend = {
    .name = "http",
    .open = http_open,
    .close = http_priv_free,
    .range = http_range,
    .stream = http_stream,
    .range_iov = http_range_iov,
};
