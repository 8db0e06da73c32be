/* SPDX-License-Identifier: MIT */
/*
 * http_pool.c - the process's HTTP client: one pool of libcurl easy
 * handles for the whole process, whatever the number of artifacts, that
 * every fetch object draws from. A caller takes an idle handle (or makes
 * one), runs its transfer with curl_easy_perform() without any lock held,
 * and gives it back. Each easy handle keeps its own connection cache, so
 * a pooled handle reuses its connection (HTTP/1.1 keep-alive or one
 * HTTP/2 connection) for the next caller of the same host, whichever
 * artifact it reads. What differs per fetch object (URL, timeouts,
 * redirect rule) is set on every request (http.c); the TLS trust
 * settings a handle was made with are part of its pool key, so a handle
 * never serves a request that wants another CA. A share handle shares
 * only what libcurl supports sharing between concurrently used easy
 * handles: the DNS cache and TLS session IDs (so a new handle resumes a
 * TLS session instead of a full handshake). Connections are NOT shared:
 * libcurl documents sharing them (CURL_LOCK_DATA_CONNECT) between
 * concurrent threads as unsupported, and it crashes with HTTP/2 over TLS.
 */
#include "http_i.h"

#include "sffs/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_MAX_REDIRS 5
#define HTTP_LOW_SPEED_BYTES 1024
#define HTTP_BUFFER_SIZE (128 * 1024)

/* Idle easy handles (each with its connection) kept for reuse, for the
 * whole process. Callers are reader and fetcher threads (16 readers, 4
 * block fetchers by default), so 24 keeps a handle for each; handles of
 * a larger burst are closed when given back, not hoarded. */
#define HTTP_POOL_IDLE_MAX 24

/* The process's HTTP client (fetch_global_init .. _cleanup). */
static struct {
	pthread_mutex_t lock; /* guards everything below but the share */
	bool ready;
	CURLSH *share;
	pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
	struct conn *idle;
	unsigned nidle;
	struct curl_slist *nocache; /* read only once ready */
} client = {.lock = PTHREAD_MUTEX_INITIALIZER};

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
		log_err("%s: cannot set up a libcurl handle", f->shown);
		conn_free(cn);
		return NULL;
	}
	return cn;
}

struct conn *http_pool_get(struct fetch *f)
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

void http_pool_put(struct conn *cn)
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

int http_priv_new(struct fetch *f, char *err, size_t errlen)
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
		     h->cainfo ? h->cainfo : "",
		     h->capath ? h->capath : "") < 0) {
		h->trust = NULL;
		return -ENOMEM;
	}
	return 0;
}

void http_priv_free(struct fetch *f)
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

struct curl_slist *http_pool_nocache(void)
{
	return client.nocache;
}
