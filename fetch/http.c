/* SPDX-License-Identifier: MIT */
/*
 * http.c - the libcurl backend.
 *
 * One HTTP client per process, whatever the number of artifacts: a pool
 * of easy handles that every fetch object draws from. A caller takes an
 * idle handle (or makes one), runs its transfer with curl_easy_perform()
 * without any lock held, and gives it back. Each easy handle keeps its
 * own connection cache, so a pooled handle reuses its connection (HTTP/1.1
 * keep-alive or one HTTP/2 connection) for the next caller of the same
 * host, whichever artifact it reads. What differs per fetch object (URL,
 * timeouts, redirect rule) is set on every request; the TLS trust
 * settings a handle was made with are part of its pool key, so a handle
 * never serves a request that wants another CA. A share handle shares only
 * what libcurl supports sharing between concurrently used easy handles:
 * the DNS cache and TLS session IDs (so a new handle resumes a TLS
 * session instead of a full handshake). Connections are NOT shared:
 * libcurl documents sharing them (CURL_LOCK_DATA_CONNECT) between
 * concurrent threads as unsupported, and it crashes with HTTP/2 over TLS.
 *
 * Every response is checked against the identity pinned by the probe
 * before its first byte is delivered.
 */
#include "fetch_i.h"

#include "sffs/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_REDIRS 5
#define HTTP_LOW_SPEED_BYTES 1024
#define HTTP_BUFFER_SIZE (128 * 1024)
/* Idle easy handles (each with its connection) kept for reuse, for the
 * whole process. Callers are reader and fetcher threads (16 readers, 4
 * block fetchers by default), so 24 keeps a handle for each; handles of
 * a larger burst are closed when given back, not hoarded. */
#define HTTP_POOL_IDLE_MAX 24

/* One easy handle, its error buffer and the trust it was set up with. */
struct conn {
	struct conn *next; /* idle list; guarded by client.lock */
	CURL *c;
	char *trust; /* pool key: "insecure|CAINFO|CAPATH" */
	char errbuf[CURL_ERROR_SIZE];
};

/* The process's HTTP client (fetch_global_init .. _cleanup). */
static struct {
	pthread_mutex_t lock; /* guards everything below but the share */
	bool ready;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	struct conn *idle;
	unsigned nidle;
	struct curl_slist *nocache; /* read only once ready */
} client = { .lock = PTHREAD_MUTEX_INITIALIZER };

enum pin { PIN_NONE, PIN_ETAG, PIN_LASTMOD };

struct http_priv {
	char *cainfo; /* CURLOPT_CAINFO, or NULL; read only */
	char *capath; /* CURLOPT_CAPATH, or NULL; read only */
	char *trust;  /* the pool key of these settings; read only */
	enum pin pin; /* set by the probe */
};

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
	char reason[64]; /* status line reason phrase */
	char msg[1024];	 /* what went wrong, one line */
};

/* ---- errno mapping ---------------------------------------------------- */

static int http_status_errno(long status)
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

static bool http_status_retryable(long status)
{
	if (status == 408 || status == 429)
		return true;
	return status >= 500 && status != 501 && status != 505;
}

static int curl_errno(CURLcode rc, long oserr)
{
	switch (rc) {
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
		if (oserr == ECONNREFUSED || oserr == EHOSTUNREACH ||
		    oserr == ENETUNREACH || oserr == ETIMEDOUT)
			return (int)-oserr;
		return -ECONNREFUSED;
	default:
		return -EIO;
	}
}

static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
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

static const char *status_reason(long status)
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

/* ---- messages ---------------------------------------------------------- */

static bool is_https(const char *url)
{
	return strncasecmp(url, "https://", 8) == 0;
}

static const char *effective_url(struct xfer *x)
{
	char *u = NULL;

	curl_easy_getinfo(x->conn->c, CURLINFO_EFFECTIVE_URL, &u);
	return u ? u : x->f->url;
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

	if (rc == CURLE_UNSUPPORTED_PROTOCOL && is_https(x->f->url) &&
	    !is_https(effective_url(x))) {
		snprintf(x->msg, sizeof(x->msg),
			 "refusing redirect from https to http: %s -> %s",
			 x->f->url, effective_url(x));
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
	const char *reason = x->reason[0] ? x->reason : status_reason(status);

	return fail(x, http_status_errno(status), http_status_retryable(status),
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

static int check_identity(struct xfer *x)
{
	struct http_priv *h = x->f->priv;
	const char *name = h->pin == PIN_ETAG ? "ETag" : "Last-Modified";
	const char *now;

	if (h->pin == PIN_NONE)
		return 0;
	now = header(x, name);
	if (!now || strcmp(now, x->f->identity) == 0)
		return 0;
	fetch_changed(x->f, "%s was %s, now %s", name, x->f->identity, now);
	return fail(x, -EIO, false,
		    "artifact changed on the server: %s was %s, now %s", name,
		    x->f->identity, now);
}

static int check_size(struct xfer *x, uint64_t total)
{
	if (total == x->f->size)
		return 0;
	fetch_changed(x->f, "size was %" PRIu64 ", now %" PRIu64, x->f->size,
		      total);
	return fail(x, -EIO, false,
		    "artifact changed on the server: size was %" PRIu64
		    ", now %" PRIu64,
		    x->f->size, total);
}

static int check_206(struct xfer *x)
{
	const char *cr = header(x, "Content-Range");
	uint64_t a, b, total;

	if (fetch_parse_content_range(cr, true, &a, &b, &total) < 0)
		return fail(x, -EIO, false, "bad Content-Range \"%s\" from %s",
			    cr ? cr : "(none)", effective_url(x));
	if (check_size(x, total) < 0)
		return x->err;
	if (a != x->start || b != x->end - 1)
		return fail(x, -EIO, false,
			    "server sent bytes %" PRIu64 "-%" PRIu64
			    " for a request of bytes %" PRIu64 "-%" PRIu64
			    " from %s",
			    a, b, x->start, x->end - 1, effective_url(x));
	x->left = b - a + 1;
	return check_identity(x);
}

static int check_200(struct xfer *x)
{
	curl_off_t cl = -1;

	curl_easy_getinfo(x->conn->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (cl < 0)
		return fail(x, -EIO, false,
			    "server ignored Range and gave no Content-Length: "
			    "%s",
			    effective_url(x));
	if (check_size(x, (uint64_t)cl) < 0)
		return x->err;
	x->skip = x->start;
	x->left = (uint64_t)cl;
	return check_identity(x);
}

/* Validates the headers of a data response before its body is used. */
static int check_response(struct xfer *x)
{
	long status = 0;
	uint64_t total;

	x->checked = true;
	curl_easy_getinfo(x->conn->c, CURLINFO_RESPONSE_CODE, &status);
	if (status == 206)
		return check_206(x);
	if (status == 200)
		return check_200(x);
	if (status == 416 &&
	    fetch_parse_content_range(header(x, "Content-Range"), false, NULL,
				      NULL, &total) == 0 &&
	    check_size(x, total) < 0)
		return x->err;
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

/* Keeps the reason phrase of the last status line, for messages. */
static size_t http_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;

	fetch_parse_status_reason(data, n, x->reason, sizeof(x->reason));
	return n;
}

/* ---- handles ----------------------------------------------------------- */

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *u)
{
	(void)c;
	(void)a;
	(void)u;
	pthread_mutex_lock(&client.share_lock[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *u)
{
	(void)c;
	(void)u;
	pthread_mutex_unlock(&client.share_lock[d]);
}

/* Sets the client up once; 0 or -errno. Callers hold client.lock. */
static int client_setup(void)
{
	/* Only what libcurl supports sharing between easy handles used at
	 * the same time: not CURL_LOCK_DATA_CONNECT. */
	const curl_lock_data what[] = {CURL_LOCK_DATA_DNS,
				       CURL_LOCK_DATA_SSL_SESSION};
	struct curl_slist *l;

	if (client.ready)
		return 0;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&client.share_lock[i], NULL);
	client.share = curl_share_init();
	l = curl_slist_append(NULL, "Cache-Control: no-cache");
	client.nocache = l ? curl_slist_append(l, "Pragma: no-cache") : NULL;
	if (!client.nocache)
		curl_slist_free_all(l);
	if (!client.share || !client.nocache)
		goto fail;
	for (size_t i = 0; i < sizeof(what) / sizeof(what[0]); i++)
		if (curl_share_setopt(client.share, CURLSHOPT_SHARE, what[i]) !=
		    CURLSHE_OK)
			goto fail;
	if (curl_share_setopt(client.share, CURLSHOPT_LOCKFUNC, share_lock) !=
		CURLSHE_OK ||
	    curl_share_setopt(client.share, CURLSHOPT_UNLOCKFUNC,
			      share_unlock) != CURLSHE_OK)
		goto fail;
	client.ready = true;
	return 0;
fail:
	curl_share_cleanup(client.share);
	curl_slist_free_all(client.nocache);
	client.share = NULL;
	client.nocache = NULL;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&client.share_lock[i]);
	return -ENOMEM;
}

static int client_get(void)
{
	int rc;

	pthread_mutex_lock(&client.lock);
	rc = client_setup();
	pthread_mutex_unlock(&client.lock);
	return rc;
}

static void conn_free(struct conn *cn)
{
	if (!cn)
		return;
	curl_easy_cleanup(cn->c);
	free(cn->trust);
	free(cn);
}

void fetch_http_cleanup(void)
{
	struct conn *cn;

	pthread_mutex_lock(&client.lock);
	while (client.idle) {
		cn = client.idle;
		client.idle = cn->next;
		conn_free(cn);
	}
	client.nidle = 0;
	if (client.ready) {
		curl_share_cleanup(client.share);
		curl_slist_free_all(client.nocache);
		for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
			pthread_mutex_destroy(&client.share_lock[i]);
		client.share = NULL;
		client.nocache = NULL;
		client.ready = false;
	}
	pthread_mutex_unlock(&client.lock);
}

/* What a handle keeps for its life: the same for every request. */
static int conn_setup(struct fetch *f, struct conn *cn)
{
	struct http_priv *h = f->priv;
	const struct fetch_opts *o = &f->opts;
	const struct {
		CURLoption opt;
		long val;
	} longs[] = {
	    {CURLOPT_NOSIGNAL, 1L},
	    {CURLOPT_FOLLOWLOCATION, 1L},
	    {CURLOPT_MAXREDIRS, HTTP_MAX_REDIRS},
	    {CURLOPT_LOW_SPEED_LIMIT, HTTP_LOW_SPEED_BYTES},
	    {CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L},
	    {CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L},
	    {CURLOPT_TCP_KEEPALIVE, 1L},
	    {CURLOPT_BUFFERSIZE, HTTP_BUFFER_SIZE},
	    /* HTTP/2 when TLS ALPN offers it, HTTP/1.1 over plain http */
	    {CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS},
	};

	for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++)
		if (curl_easy_setopt(cn->c, longs[i].opt, longs[i].val) !=
		    CURLE_OK)
			return -EINVAL;
	if ((h->cainfo &&
	     curl_easy_setopt(cn->c, CURLOPT_CAINFO, h->cainfo) != CURLE_OK) ||
	    (h->capath &&
	     curl_easy_setopt(cn->c, CURLOPT_CAPATH, h->capath) != CURLE_OK))
		return -EINVAL;
	if (curl_easy_setopt(cn->c, CURLOPT_SHARE, client.share) != CURLE_OK ||
	    curl_easy_setopt(cn->c, CURLOPT_PROTOCOLS_STR, "http,https") !=
		CURLE_OK ||
	    curl_easy_setopt(cn->c, CURLOPT_USERAGENT, "sffs/0.1") !=
		CURLE_OK ||
	    curl_easy_setopt(cn->c, CURLOPT_ERRORBUFFER, cn->errbuf) !=
		CURLE_OK ||
	    curl_easy_setopt(cn->c, CURLOPT_WRITEFUNCTION, http_write) !=
		CURLE_OK ||
	    curl_easy_setopt(cn->c, CURLOPT_HEADERFUNCTION, http_header) !=
		CURLE_OK)
		return -EINVAL;
	return 0;
}

static struct conn *conn_new(struct fetch *f)
{
	struct http_priv *h = f->priv;
	struct conn *cn = calloc(1, sizeof(*cn));

	if (!cn)
		return NULL;
	cn->c = curl_easy_init();
	cn->trust = strdup(h->trust);
	if (!cn->c || !cn->trust || conn_setup(f, cn) < 0) {
		log_err("%s: cannot set up a libcurl handle", f->url);
		conn_free(cn);
		return NULL;
	}
	return cn;
}

/* An idle handle made with f's trust settings, or a new one. */
static struct conn *pool_get(struct fetch *f)
{
	struct http_priv *h = f->priv;
	struct conn **pp, *cn = NULL;

	pthread_mutex_lock(&client.lock);
	for (pp = &client.idle; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->trust, h->trust)) {
			cn = *pp;
			*pp = cn->next;
			client.nidle--;
			break;
		}
	}
	pthread_mutex_unlock(&client.lock);
	return cn ? cn : conn_new(f);
}

/* Keeps cn for the next caller, or closes it when enough are idle. */
static void pool_put(struct conn *cn)
{
	bool keep;

	pthread_mutex_lock(&client.lock);
	keep = client.ready && client.nidle < HTTP_POOL_IDLE_MAX;
	if (keep) {
		cn->next = client.idle;
		client.idle = cn;
		client.nidle++;
	}
	pthread_mutex_unlock(&client.lock);
	if (!keep)
		conn_free(cn);
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
	curl_off_t ra = 0;
	CURLcode rc;

	x->start = x->pos;
	x->skip = x->left = x->got = 0;
	x->checked = x->done = x->retry = false;
	x->err = 0;
	x->retry_after_ms = 0;
	x->reason[0] = x->msg[0] = x->conn->errbuf[0] = '\0';
	/* all set every time: a pooled handle keeps the last caller's
	 * values, and the last caller may have read another artifact */
	curl_easy_setopt(c, CURLOPT_URL, x->f->url);
	/* an https URL is never followed to plain http */
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
			 is_https(x->f->url) ? "https" : "http,https");
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
			 (x->flags & FETCH_NOCACHE) ? client.nocache : NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
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
	x->err = curl_errno(rc, oserr);
	x->retry = curl_retryable(rc);
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
	if (x->pos < x->end)
		return fail(
		    x, -EIO, true,
		    "short body: got %" PRIu64 " of %" PRIu64 " bytes from %s",
		    x->pos - x->start, x->end - x->start, effective_url(x));
	return 0;
}

static int pin_identity(struct xfer *x)
{
	struct http_priv *h = x->f->priv;
	const char *etag = header(x, "ETag");
	const char *lm = header(x, "Last-Modified");

	h->pin = etag ? PIN_ETAG : lm ? PIN_LASTMOD : PIN_NONE;
	free(x->f->identity);
	x->f->identity = strdup(etag ? etag : lm ? lm : "");
	return x->f->identity ? 0 : fail(x, -ENOMEM, false, "out of memory");
}

/* A 200 to "Range: bytes=0-0" is fine only for an artifact of 0 or 1
 * bytes; for anything bigger, every read would download from byte 0. */
static int probe_200(struct xfer *x, uint64_t *size)
{
	curl_off_t cl = -1;

	curl_easy_getinfo(x->conn->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (cl > 1 || (cl < 0 && x->got > 1))
		return fail(x, -EIO, false,
			    "server ignores Range requests (answered 200 to a "
			    "range request): every read would download from "
			    "byte 0: %s",
			    effective_url(x));
	if (cl < 0)
		return fail(x, -EIO, false,
			    "server did not give the size of %s",
			    effective_url(x));
	*size = (uint64_t)cl;
	return 0;
}

static int probe_size(struct xfer *x, long status, uint64_t *size)
{
	const char *cr = header(x, "Content-Range");
	uint64_t a = 0, b = 0;

	if (status == 206 &&
	    fetch_parse_content_range(cr, true, &a, &b, size) == 0 && a == 0 &&
	    b == 0)
		return 0;
	if (status == 416 &&
	    fetch_parse_content_range(cr, false, NULL, NULL, size) == 0 &&
	    *size == 0)
		return 0;
	if (status == 200)
		return probe_200(x, size);
	if (status != 206)
		return status_error(x, status);
	return fail(x, -EIO, false, "server did not give the size of %s",
		    effective_url(x));
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

	x->conn = pool_get(f);
	if (!x->conn)
		return fail(x, -ENOMEM, false, "out of memory");
	for (;;) {
		uint64_t before = x->pos;

		if (x->deadline_ns && fetch_now_ns() >= x->deadline_ns) {
			rc = deadline_fail(x);
			break;
		}
		rc = attempt(x);
		if (rc == 0 || !x->retry || x->sink_rc)
			break;
		if (x->pos > before)
			tries = 0;
		if (tries >= f->opts.retries)
			break;
		if (fetch_backoff(f, tries, x->retry_after_ms,
				  x->deadline_ns) < 0) {
			rc = deadline_fail(x);
			break;
		}
		log_warn("%s; retry %u of %u", x->msg, ++tries,
			 f->opts.retries);
		atomic_fetch_add(&f->retries, 1);
	}
	pool_put(x->conn);
	x->conn = NULL;
	return rc;
}

/* ---- backend ------------------------------------------------------------ */

static void http_close(struct fetch *f)
{
	struct http_priv *h = f->priv;

	if (!h)
		return;
	free(h->cainfo);
	free(h->capath);
	free(h->trust);
	free(h);
	f->priv = NULL;
}

/* The CA settings the curl tool takes from the environment (libcurl reads
 * none of them): CURL_CA_BUNDLE, else SSL_CERT_FILE and SSL_CERT_DIR. */
static int ca_from_env(struct http_priv *h, char *err, size_t errlen)
{
	const char *from = "CURL_CA_BUNDLE", *file = getenv(from);
	const char *dir = getenv("SSL_CERT_DIR");
	int rc;

	if (!file || !file[0]) {
		from = "SSL_CERT_FILE";
		file = getenv(from);
		/* as is: OpenSSL takes a ':' list and skips missing ones */
		if (dir && dir[0]) {
			h->capath = strdup(dir);
			if (!h->capath)
				return -ENOMEM;
		}
	}
	if (!file || !file[0])
		return 0;
	rc = fetch_readable_file(file, &h->cainfo);
	if (rc < 0)
		snprintf(err, errlen, "cannot use CA file %s (from %s): %s",
			 file, from,
			 rc == -EINVAL ? "not a regular file" : strerror(-rc));
	return rc;
}

/* The cafile option (already made absolute and checked), else the
 * environment, else nothing: libcurl's built-in default. */
static int ca_setup(struct fetch *f, char *err, size_t errlen)
{
	struct http_priv *h = f->priv;

	if (!f->cafile)
		return ca_from_env(h, err, errlen);
	h->cainfo = strdup(f->cafile);
	return h->cainfo ? 0 : -ENOMEM;
}

/* f's private state: its trust settings and their pool key. */
static int http_priv_new(struct fetch *f, char *err, size_t errlen)
{
	struct http_priv *h = calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -ENOMEM;
	f->priv = h;
	rc = client_get();
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up libcurl: %s",
			 strerror(-rc));
		return rc;
	}
	rc = ca_setup(f, err, errlen);
	if (rc < 0)
		return rc;
	if (asprintf(&h->trust, "%d|%s|%s", f->opts.insecure ? 1 : 0,
		     h->cainfo ? h->cainfo : "", h->capath ? h->capath : "") <
	    0) {
		h->trust = NULL;
		return -ENOMEM;
	}
	return 0;
}

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
		log_err("%s: bytes %" PRIu64 "-%" PRIu64 ": %s", f->url, off,
			end - 1, x.msg);
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
	struct iov_pos p = { .iov = iov, .n = n };
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
    .close = http_close,
    .range = http_range,
    .stream = http_stream,
    .range_iov = http_range_iov,
};
