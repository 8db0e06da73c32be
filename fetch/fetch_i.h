/* SPDX-License-Identifier: MIT */
/*
 * fetch_i.h - internals shared by fetch.c and its backends (http*.c, file.c).
 *
 * struct fetch is the common object: resolved URL, pinned size and identity,
 * statistics and the backend's private state. A backend is a small table of
 * function pointers; fetch.c checks arguments and dispatches.
 *
 * Invariants after a successful open: url, identity and size never change;
 * everything a backend shares between threads is guarded as it says.
 */
#ifndef SFFS_FETCH_I_H
#define SFFS_FETCH_I_H

#include "sffs/fetch.h"
#include "sffs/util.h"

#include "http_hdr.h"

#include <pthread.h>
#include <stdatomic.h>

struct fetch_backend {
	const char *name;
	/* Probes f->url, sets f->size, f->identity and f->priv. On failure
	 * writes a one-line message to err and returns -errno; f->priv may
	 * be half-built and is then given to close(). */
	int (*open)(struct fetch *f, char *err, size_t errlen);
	/* Frees f->priv (may be NULL or half-built). */
	void (*close)(struct fetch *f);
	/* Arguments are checked: 0 < len, off + len <= size; deadline_ns
	 * (0: none) had not passed when called. */
	int (*range)(struct fetch *f, uint64_t off, size_t len, void *buf,
		     unsigned flags, uint64_t deadline_ns);
	/* Arguments are checked: off < end <= size. */
	int (*stream)(struct fetch *f, uint64_t off, uint64_t end,
		      fetch_sink sink, void *arg);
	/* Optional: a scattered range in one request (checked, total > 0);
	 * without it fetch.c calls range once per piece. */
	int (*range_iov)(struct fetch *f, uint64_t off,
			 const struct fetch_iov *iov, size_t n, unsigned flags,
			 uint64_t deadline_ns);
};

extern const struct fetch_backend fetch_http_backend;
extern const struct fetch_backend fetch_file_backend;

struct fetch {
	const struct fetch_backend *be;
	struct fetch_opts opts;
	char *url; /* resolved URL (http(s):// or file://) */
	/* url as log lines may show it (util_url_redact): set with
	 * fetch_set_shown() wherever url is */
	char shown[UTIL_URL_SHOWN_MAX];
	char *path;	/* file backend: the local path; else NULL */
	char *identity; /* pinned validator, "" when none; set by open */
	char *cafile;	/* own absolute copy of opts.cafile, or NULL */
	uint64_t size;	/* pinned at open */
	void *priv;	/* backend state */
	atomic_bool change_logged; /* "artifact changed" said once */
	atomic_uint_least64_t rng; /* back-off jitter state */
	atomic_uint_least64_t requests;
	atomic_uint_least64_t bytes;
	atomic_uint_least64_t retries;
	atomic_uint_least64_t errors;
	atomic_uint_least64_t adoptions;
	atomic_bool adopt;	    /* fetch_adopt_validators */
	pthread_mutex_t adopt_lock; /* guards adopted */
	char *adopted;		    /* the validator adopted last, or NULL */
};

enum fetch_kind { FETCH_KIND_HTTP, FETCH_KIND_FILE };

/* Fills f->shown from f->url (NULL url: ""). */
void fetch_set_shown(struct fetch *f);

/*
 * Resolves SOURCE: http(s):// URLs as they are, s3://bucket/key to
 * https://bucket.s3.amazonaws.com/key, or ENDPOINT/bucket/key with
 * o->s3_endpoint (key percent-encoded; o may be NULL), file:// URLs
 * and plain paths to a local path. Returns a malloc'd string (URL for
 * HTTP, path for files) and sets *kind, or NULL with a message in err.
 * Exported for tests.
 */
char *fetch_resolve_source(const char *source, const struct fetch_opts *o,
			   enum fetch_kind *kind, char *err, size_t errlen);

/* http.c: the whole document at f->url (f half made: url and opts set,
 * no backend state yet; fetch_free frees what this makes) into a
 * malloc'd, NUL-terminated *body of *len <= max bytes (HEAD: ""). 0 or
 * -errno with a message in err. */
int fetch_http_document(struct fetch *f, bool head, size_t max, char **body,
			size_t *len, char *err, size_t errlen);
/* http.c: f's backend state without a probe: size and validator as
 * pinned says (fetch_open_pinned). 0 or -errno with a message in err. */
int fetch_http_open_pinned(struct fetch *f, const struct fetch_pinned *pinned,
			   char *err, size_t errlen);
/* http.c: frees the process's HTTP client (fetch_global_cleanup). */
void fetch_http_cleanup(void);

/* Sets *abs to a malloc'd absolute form of path (the daemon chdirs to /
 * after the mount, and handles are made later) once path opens for reading
 * as a regular file. Returns 0, or -errno (-EINVAL: not a regular file)
 * with *abs NULL. */
int fetch_readable_file(const char *path, char **abs);

/* Logs "artifact changed ...: WHAT (URL)" the first time it is called for
 * f, and returns -EIO. */
int fetch_changed(struct fetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Whether fetch_adopt_validators(f, true) was called. */
bool fetch_adopting(const struct fetch *f);

/* Under adoption: now, the validator a response carries (what names it,
 * "ETag", "Last-Modified", "mtime"), differs from the pinned one. If it
 * also differs from the one adopted last, logs a warning and adopts it
 * (counted in the stats). 0, or -ENOMEM. Thread safe. */
int fetch_adopt(struct fetch *f, const char *what, const char *now);

/* Sleeps before retry number attempt (0-based): backoff_ms doubled per
 * attempt, capped, +-50% jitter; at least min_ms (Retry-After), capped.
 * Returns 0 after sleeping, or -ETIMEDOUT at once, without sleeping, when
 * the sleep would end at or past deadline_ns (0: no deadline). */
int fetch_backoff(struct fetch *f, unsigned attempt, uint64_t min_ms,
		  uint64_t deadline_ns);

/* ---- route.c: which server and proxy an attempt goes to ---- */

#define ROUTE_MAX 16u /* servers in the ring, groups, proxies per group */

/* A snapshot of the route for one attempt. */
struct route_pick {
	char *url;	/* the URL on the current mirror, or NULL: f->url */
	bool has_proxy; /* proxies are configured: set CURLOPT_PROXY */
	bool mirrored;	/* the URL is under the ring's base */
	char proxy[512]; /* the proxy to use, "" for DIRECT */
	unsigned routes; /* servers + proxies: failovers worth trying */
	uint64_t host_gen, proxy_gen;
};

enum route_fault {
	ROUTE_NONE,	 /* an answer, not a failure of the route */
	ROUTE_HOST,	 /* DNS, 5xx, a 404 of a known object, bad bytes */
	ROUTE_TRANSPORT, /* connect, timeout, reset, short body: the
			    proxy's when one is used, else the host's */
	ROUTE_PROXY,
};

/* Fills p for an attempt at url (malloc'd p->url: route_pick_free).
 * 0 or -ENOMEM. */
int route_pick(const char *url, struct route_pick *p);
void route_pick_free(struct route_pick *p);
/* The attempt made with p failed this way: moves to the next server or
 * proxy unless someone already did. true when the next attempt goes
 * somewhere else. */
bool route_fault(const struct route_pick *p, enum route_fault kind,
		 const char *why);
/* A request's final result (0 or -errno): logs going offline (every
 * server unreachable) and coming back. */
void route_result(const char *shown, int rc, const char *why);

#endif
