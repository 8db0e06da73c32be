/* SPDX-License-Identifier: MIT */
/*
 * fetch.h - byte ranges of one remote (or local) artifact, identity pinned.
 *
 * A struct fetch stands for one artifact: an http(s):// URL, s3://bucket/key
 * (anonymous, read as https://bucket.s3.amazonaws.com/key), file://path or a
 * plain local path. fetch_open() probes it once and pins its identity: size
 * plus ETag or Last-Modified for HTTP, size plus mtime and inode for files.
 * Every later response is checked against that identity, so bytes of two
 * versions of the file are never mixed: a change makes reads fail with -EIO
 * and logs why (once).
 *
 * HTTP is libcurl's easy interface: one pool of easy handles for the
 * whole process (whatever the number of artifacts open), one per
 * concurrent caller, each keeping its own connection (reused by the next
 * caller that takes the handle); a share handle shares only the DNS cache
 * and TLS session IDs between them, which libcurl supports for concurrent
 * use (sharing connections is not). HTTP/2 is asked for over TLS, HTTP/1.1
 * over plain http. Not chosen: one multi handle driven by an I/O thread,
 * multiplexing every caller over one HTTP/2 connection; it saves
 * handshakes and connections but needs a thread, a hand-off per request
 * and per-transfer timeouts of its own, and puts every reader behind one
 * TCP connection's losses (README, "How it works", has the measurement).
 *
 * Also: at most 5 redirects, and never from https to plain http (refused,
 * with a message saying so); TLS verification on; connect and low-speed
 * timeouts; retries with exponential back-off and jitter as the table
 * below says. A 206 must answer the range asked
 * (Content-Range is checked). A server that answers the probe's range
 * request with a 200 ignores Range, and every read would download from
 * byte 0: fetch_open() refuses it (unless the artifact is 0 or 1 bytes).
 * A 200 to a later request (a CDN edge may answer one from a whole-object
 * cache) is coped with by reading the body up to the range and dropping
 * the rest.
 * http_proxy/https_proxy/no_proxy are honoured (libcurl reads them).
 *
 * Errors: one table for every call (fetch_open sets errno, the others
 * return -errno), so callers decide on the errno, never on a message:
 *   HTTP 404, 410, no such file ........ ENOENT (the object is missing)
 *   HTTP 401, 403, file permissions .... EACCES: for a range or stream of
 *        an artifact already opened (so known to exist) a WAF or throttle:
 *        retried like 5xx and never "missing"; at open and for documents
 *        not retried (S3 answers 403 for a missing key where listing is
 *        denied), and the caller must not take it for ENOENT silently
 *   HTTP 429, 500, 502, 503 and other 5xx but 501/505 ... retried with
 *        exponential back-off and jitter (Retry-After honoured), then EIO
 *        (not EAGAIN: a reader of a regular file does not expect it)
 *   HTTP 408, 504, transfer timeouts, a deadline passed ... ETIMEDOUT
 *        (retried, except a deadline)
 *   connection refused ................. ECONNREFUSED (retried)
 *   DNS failure, host or net unreachable EHOSTUNREACH (retried)
 *   connection reset or closed before an answer, HTTP/2 stream errors
 *        ................................ ECONNRESET (retried)
 *   short body (retried), bad or wrong Content-Range, more bytes than
 *        asked, a server ignoring Range, TLS and protocol errors, other
 *        statuses .......................... EIO
 *   the artifact changed (size or validator) ... EIO, logged once; with
 *        fetch_adopt_validators() a changed validator of the same size is
 *        adopted and a changed size is ESTALE
 *   bad arguments or source ............. EINVAL; out of memory ENOMEM
 * fetch never returns EBADMSG: that errno is reserved for integrity
 * failures found above it (block digests, gzip/zstd checks, signatures).
 * Each failed range or stream is logged once with the URL, the byte range
 * and the cause.
 *
 * Thread safety: after fetch_open(), all functions may be called from any
 * number of threads at once. No lock is held during network I/O.
 *
 * Never includes FUSE headers.
 */
#ifndef SFFS_FETCH_H
#define SFFS_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fetch;

struct fetch_opts {
	unsigned connect_timeout_s; /* default 10 */
	unsigned low_speed_time_s;  /* abort if < 1 KiB/s for this long; 30 */
	unsigned retries;	    /* extra attempts per request; default 5 */
	unsigned backoff_ms; /* first back-off; doubles, +-50% jitter; 200 */
	unsigned backoff_max_ms; /* cap of one back-off; default 10000 */
	bool insecure;		 /* skip TLS verification (never default) */
	/* CA certificates (PEM) to verify TLS with, instead of libcurl's
	 * default bundle (its default CA directory, if any, still counts,
	 * as with curl --cacert). NULL (default): the environment the curl
	 * tool honours, CURL_CA_BUNDLE, else SSL_CERT_FILE and SSL_CERT_DIR
	 * (a ':'-separated directory list, passed as is); else libcurl's
	 * default. fetch_open() keeps its own copy. */
	const char *cafile;
	/* s3:// sources go to ENDPOINT/bucket/key (path style) instead of
	 * https://bucket.s3.amazonaws.com/key; NULL: AWS. Borrowed. */
	const char *s3_endpoint;
};

/* Fills o with the defaults above. */
void fetch_opts_default(struct fetch_opts *o);

/* Process-wide libcurl init; call once from main() before threads. 0/-errno */
int fetch_global_init(void);
void fetch_global_cleanup(void);

/*
 * Resolves SOURCE, probes it (a GET of the first bytes for HTTP) and pins
 * its identity. A CA file (o->cafile, or CURL_CA_BUNDLE / SSL_CERT_FILE
 * for HTTP) that is missing or unreadable fails the open before any
 * request. On failure returns NULL and writes a one-line, human message
 * naming the problem ("HTTP 404 Not Found: URL", "cannot connect to host:
 * ...", "server ignores Range requests ...", "cannot use CA file F: ...")
 * into err (always NUL terminated), and sets errno: ENOENT (no such
 * object: HTTP 404/410, no such file), EACCES (HTTP 401/403, file
 * permissions), EINVAL (bad source), ETIMEDOUT,
 * ECONNREFUSED, EHOSTUNREACH, ECONNRESET, ENOMEM or EIO (a server that
 * ignores Range included). Callers decide on errno,
 * never on the message. o may be NULL for defaults.
 * The returned object is owned by the caller: fetch_free().
 */
struct fetch *fetch_open(const char *source, const struct fetch_opts *o,
			 char *err, size_t errlen);
/*
 * fetch_open without asking the server: the artifact's size and validator
 * as a cache recorded them when it was last opened (fetch_size and
 * fetch_identity then). For a mount that must start while no server
 * answers (a reboot offline): every read is then checked against what was
 * pinned, as after a probe, and fails with the network's errno until a
 * server answers. Local files are opened (and probed) as fetch_open does.
 */
struct fetch_pinned {
	uint64_t size;
	const char *identity;
};
struct fetch *fetch_open_pinned(const char *source, const struct fetch_opts *o,
				const struct fetch_pinned *pinned, char *err,
				size_t errlen);

/*
 * A small whole document that is not an artifact read by ranges: an S3
 * listing, an existence probe (FETCH_DOC_HEAD: a HEAD request, *body ""),
 * a signature. Same sources, options, retries and TLS rules as
 * fetch_open, through the same process-wide HTTP client. 0 with *body a
 * malloc'd, NUL-terminated copy of the *len <= max bytes (free() it), or
 * -ENOENT (404/410, no file), -EACCES (401/403), -EFBIG (larger than
 * max), -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -ECONNRESET, -ENOMEM,
 * -EINVAL (bad source), -EIO, with a one-line message in err.
 */
enum fetch_doc_flags { FETCH_DOC_HEAD = 1 << 0 };
int fetch_document(const char *source, const struct fetch_opts *o,
		   unsigned flags, size_t max, char **body, size_t *len,
		   char *err, size_t errlen);

/*
 * For a source s3://BUCKET[/PREFIX]: the bucket's URL as reads and
 * listings use it ("https://BUCKET.s3.amazonaws.com", or
 * "ENDPOINT/BUCKET" with o->s3_endpoint) and PREFIX ("" when none), both
 * malloc'd. 0, or -EINVAL (not s3://, bad bucket) / -ENOMEM with a
 * message in err.
 */
int fetch_s3_split(const char *source, const struct fetch_opts *o,
		   char **bucket_url, char **prefix, char *err, size_t errlen);

/* Frees f; NULL does nothing. No call on f may be running. */
void fetch_free(struct fetch *f);

/* The artifact's size in bytes (pinned at open). */
uint64_t fetch_size(const struct fetch *f);
/*
 * Identity is the artifact's size + SHA-256 (from its index), not a
 * server's validator. A caller that verifies every block it reads by
 * digest turns this on: then a response whose ETag or Last-Modified (for
 * files: mtime) differs from the pinned one, with the same size, is
 * served, and each new validator is logged once ("ETag of URL changed
 * from A to B; blocks are verified by digest, adopted") and counted in
 * fetch_stats.adoptions; a changed size fails with -ESTALE. Off (the
 * default): any change fails with -EIO, as before. fetch_identity() stays
 * the validator pinned at open. May be called at any time, from any
 * thread; applies to requests that start after it.
 */
void fetch_adopt_validators(struct fetch *f, bool on);

/* The effective URL ("file:///abs/path" for local files). Owned by f. */
const char *fetch_url(const struct fetch *f);
/* fetch_url() as log lines, fsname and xattrs may show it: without
 * userinfo, query and fragment (util_url_redact). Owned by f. */
const char *fetch_url_shown(const struct fetch *f);
/* The pinned validator: the ETag (with quotes as sent) or, failing that,
 * Last-Modified or, for files, "mtime-inode". Never NULL ("" when the server
 * gave neither). Owned by f. */
const char *fetch_identity(const struct fetch *f);

/*
 * The URL of a file beside url: suffix appended to the path component
 * only, so "https://h/a.tar.gz?X-Amz-Signature=1#f" + ".sfidx" gives
 * "https://h/a.tar.gz.sfidx?X-Amz-Signature=1#f" (query and fragment
 * kept; libcurl's URL parser may normalise the rest, e.g. lower-case the
 * scheme or resolve "/../"). suffix is appended verbatim: it must need no
 * percent-encoding. Local paths and file:// URLs (as fetch_url() gives
 * them, not percent-encoded) just get suffix appended. Returns a malloc'd
 * string for the caller to free(), or NULL with errno ENOMEM, or EINVAL
 * for a URL libcurl cannot parse or whose path names no file (empty or
 * ending in '/'). Thread safe.
 */
char *fetch_sibling_url(const char *url, const char *suffix);

enum fetch_flags {
	FETCH_NOCACHE = 1 << 0, /* send Cache-Control: no-cache / Pragma */
};

/*
 * Reads exactly len bytes at off into buf (len may be 0). Returns 0, or
 * -EINVAL (range outside the artifact) or an errno of the table above
 * (after the retries it allows). Errors are also logged with the URL,
 * range and cause.
 */
int fetch_range(struct fetch *f, uint64_t off, size_t len, void *buf,
		unsigned flags);

/*
 * fetch_range() that gives up at deadline_ns, a CLOCK_MONOTONIC time in
 * nanoseconds (as fetch_now_ns() gives; 0 = no deadline), with -ETIMEDOUT:
 * each attempt's transfer may take only the time left, no back-off sleep
 * would end past the deadline (the call fails instead of sleeping), and no
 * retry starts after it. A deadline already passed fails at once, without
 * a request. Otherwise as fetch_range(), which is fetch_range_until(...,
 * 0). For local files a read cannot stall: only the deadline's passing
 * before the read is checked. Thread safety as fetch_range().
 */
int fetch_range_until(struct fetch *f, uint64_t off, size_t len, void *buf,
		      unsigned flags, uint64_t deadline_ns);

/* Now on CLOCK_MONOTONIC, in nanoseconds: the clock of deadline_ns. */
uint64_t fetch_now_ns(void);

/* One piece of a scattered read. */
struct fetch_iov {
	void *base;
	size_t len;
};
/*
 * fetch_range_until into n buffers: the bytes at off fill iov[0], then
 * iov[1], ... (the lengths add up to the range; one request over HTTP).
 * Same return values as fetch_range_until.
 */
int fetch_range_iov(struct fetch *f, uint64_t off, const struct fetch_iov *iov,
		    size_t n, unsigned flags, uint64_t deadline_ns);

/*
 * Streams the bytes [off, end) in order to sink. If the connection breaks or
 * times out, it resumes with a range request from the last byte delivered
 * (retry rules as above), so sink sees every byte exactly once. end == 0
 * means the end of the artifact. A sink returns 0 to go on; any other value
 * stops the stream and is returned as is (use a negative errno).
 * Returns 0 once all bytes were delivered, else -errno.
 */
typedef int (*fetch_sink)(void *arg, const void *data, size_t len);
int fetch_stream(struct fetch *f, uint64_t off, uint64_t end, fetch_sink sink,
		 void *arg);

struct fetch_stats {
	uint64_t requests; /* HTTP requests sent (or pread/stream calls) */
	uint64_t bytes;	   /* payload bytes received */
	uint64_t retries;  /* requests that were retried */
	uint64_t errors;   /* range/stream calls that finally failed (a
			      sink's stop and bad arguments not counted) */
	uint64_t
	    adoptions; /* new validators adopted (fetch_adopt_validators) */
};
/* A consistent-enough snapshot (counters are atomics). */
void fetch_get_stats(const struct fetch *f, struct fetch_stats *st);

/*
 * A source that is not a URL: reads come from ops->range(arg, ...), which
 * must fill exactly len bytes at off (0 < len, off + len <= size) or
 * return -errno; it may be called from any number of threads at once.
 * For wrappers (a slice of another artifact, a cache in front of one) and
 * for tests that inject faults. name is what fetch_url returns. NULL on
 * ENOMEM. arg is borrowed.
 */
struct fetch_source_ops {
	int (*range)(void *arg, uint64_t off, size_t len, void *buf,
		     unsigned flags);
};
struct fetch *fetch_open_source(const char *name, uint64_t size,
				const char *identity,
				const struct fetch_source_ops *ops, void *arg);

/*
 * Servers and proxies, for the whole process (route.c). mirrors: other
 * bases serving the same paths as base, "URL[;URL...]": a URL under base
 * is asked of the current one of the ring [base, mirrors...]; a host's
 * failure (DNS, HTTP 5xx, 404 of an artifact already opened, a transport
 * failure without a proxy, bad bytes: fetch_report_corrupt) moves every
 * request to the next, and after host_reset_after_s (0: never) back to
 * base. proxies: "A|B;C;DIRECT" as CernVM-FS writes them: '|' picks at
 * random within a group, ';' fails over to the next group, DIRECT is no
 * proxy; a transport failure through a proxy (connect, timeout, reset,
 * short body) moves to another proxy of the group, then to the next
 * group; back to the first group after proxy_reset_after_s. NULL
 * proxies: libcurl's (http_proxy and friends). Call before any fetch; 0,
 * or -EINVAL / -ENOMEM with a message in err. NULL o: none.
 */
struct fetch_route_opts {
	const char *base;  /* a source as fetch_open takes it */
	bool base_is_dir;  /* else its directory is the base */
	const struct fetch_opts *fo; /* for s3:// (NULL: defaults) */
	const char *mirrors;
	const char *proxies;
	unsigned host_reset_after_s;  /* default 1800 */
	unsigned proxy_reset_after_s; /* default 300 */
};
int fetch_route_setup(const struct fetch_route_opts *o, char *err,
		      size_t errlen);

struct fetch_route_stats {
	char host[256];	 /* the server in use (redacted), "" if no ring */
	char proxy[256]; /* the proxy in use, "DIRECT", "" if none set */
	uint64_t host_failovers, proxy_failovers;
	bool offline;	    /* the last request found no server */
	uint64_t offline_s; /* for this long */
	uint64_t offline_count;
};
void fetch_route_get_stats(struct fetch_route_stats *st);

/* Bytes of f failed their digest again after a no-cache request: the
 * server in use is at fault, and the next request goes to the next. */
void fetch_report_corrupt(struct fetch *f);

#endif
