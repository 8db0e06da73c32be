/* SPDX-License-Identifier: MIT */
/*
 * fetch.c - the common fetch object: argument checks, dispatch to a
 * backend, identity-change reporting, back-off, statistics. What a SOURCE
 * names is source.c's.
 */
#include "fetch_i.h"

#include "sffs/log.h"
#include "sffs/util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void fetch_opts_default(struct fetch_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->connect_timeout_s = 10;
	o->low_speed_time_s = 30;
	o->retries = 5;
	o->backoff_ms = 200;
	o->backoff_max_ms = 10000;
	o->insecure = false;
	o->cafile = NULL;
}

int fetch_global_init(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	if (rc == CURLE_OUT_OF_MEMORY)
		return -ENOMEM;
	return rc == CURLE_OK ? 0 : -EIO;
}

void fetch_global_cleanup(void)
{
	fetch_http_cleanup();
	curl_global_cleanup();
}

static uint64_t seed_rng(const struct fetch *f)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
	       ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)f;
}

int fetch_readable_file(const char *path, char **abs)
{
	struct stat st;
	int fd, e = 0;

	*abs = realpath(path, NULL);
	if (!*abs)
		return -errno;
	fd = open(*abs, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	if (fd >= 0)
		close(fd);
	if (e) {
		free(*abs);
		*abs = NULL;
	}
	return -e;
}

/* A local file as a document: up to max bytes, NUL-terminated. */
static int file_document(const char *path, bool head, size_t max, char **body,
			 size_t *len)
{
	struct stat st;
	ssize_t n;
	char *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if (!head && (uint64_t)st.st_size > max)
		rc = -EFBIG;
	if (rc < 0 || head) {
		close(fd);
		if (rc == 0 && !(*body = strdup("")))
			rc = -ENOMEM;
		return rc;
	}
	p = malloc((size_t)st.st_size + 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	n = pread(fd, p, (size_t)st.st_size, 0);
	rc = n < 0 ? -errno : n != st.st_size ? -EIO : 0;
	close(fd);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p[n] = '\0';
	*body = p;
	*len = (size_t)n;
	return 0;
}

/* A zeroed fetch object whose lock is ready; NULL on ENOMEM. */
static struct fetch *fetch_new(void)
{
	struct fetch *f = calloc(1, sizeof(*f));

	if (f && pthread_mutex_init(&f->adopt_lock, NULL) != 0) {
		free(f);
		return NULL;
	}
	return f;
}

/* Replaces the caller's opts.cafile by f's own absolute copy. */
static int copy_cafile(struct fetch *f, char *err, size_t errlen)
{
	int rc;

	if (!f->opts.cafile)
		return 0;
	rc = fetch_readable_file(f->opts.cafile, &f->cafile);
	if (rc < 0)
		snprintf(err, errlen, "cannot use CA file %s: %s",
			 f->opts.cafile,
			 rc == -EINVAL ? "not a regular file" : strerror(-rc));
	f->opts.cafile = f->cafile;
	return rc;
}

/* fetch_open, or with pinned (not NULL) fetch_open_pinned. */
static struct fetch *open_source(const char *source, const struct fetch_opts *o,
				 const struct fetch_pinned *pinned, char *err,
				 size_t errlen)
{
	char shown[UTIL_URL_SHOWN_MAX];
	struct fetch *f;
	enum fetch_kind kind;
	char *target;
	int rc;

	if (errlen)
		err[0] = '\0';
	target = fetch_resolve_source(source, o, &kind, err, errlen);
	if (!target) {
		errno = EINVAL;
		return NULL;
	}
	f = fetch_new();
	if (!f) {
		snprintf(err, errlen, "out of memory");
		free(target);
		return NULL;
	}
	if (o)
		f->opts = *o;
	else
		fetch_opts_default(&f->opts);
	atomic_init(&f->rng, seed_rng(f));
	if (copy_cafile(f, err, errlen) < 0) {
		free(target);
		fetch_free(f);
		return NULL;
	}
	if (kind == FETCH_KIND_HTTP) {
		f->be = &fetch_http_backend;
		f->url = target;
		fetch_set_shown(f);
	} else {
		f->be = &fetch_file_backend;
		f->path = target;
	}
	rc = pinned && kind == FETCH_KIND_HTTP
		 ? fetch_http_open_pinned(f, pinned, err, errlen)
		 : f->be->open(f, err, errlen);
	if (rc < 0) {
		if (errlen && !err[0])
			snprintf(err, errlen, "%s: %s",
				 util_url_redact(source, shown, sizeof(shown)),
				 strerror(-rc));
		fetch_free(f);
		errno = -rc;
		return NULL;
	}
	return f;
}

struct fetch *fetch_open(const char *source, const struct fetch_opts *o,
			 char *err, size_t errlen)
{
	return open_source(source, o, NULL, err, errlen);
}

struct fetch *fetch_open_pinned(const char *source, const struct fetch_opts *o,
				const struct fetch_pinned *pinned, char *err,
				size_t errlen)
{
	return open_source(source, o, pinned, err, errlen);
}

int fetch_document(const char *source, const struct fetch_opts *o,
		   unsigned flags, size_t max, char **body, size_t *len,
		   char *err, size_t errlen)
{
	enum fetch_kind kind;
	struct fetch *f;
	char *target;
	int rc;

	*body = NULL;
	*len = 0;
	if (errlen)
		err[0] = '\0';
	target = fetch_resolve_source(source, o, &kind, err, errlen);
	if (!target)
		return -EINVAL;
	if (kind == FETCH_KIND_FILE) {
		rc = file_document(target, flags & FETCH_DOC_HEAD, max, body,
				   len);
		if (rc < 0)
			snprintf(err, errlen, "%s: %s", target,
				 rc == -EFBIG ? "too large" : strerror(-rc));
		free(target);
		return rc;
	}
	f = fetch_new();
	if (!f) {
		free(target);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (o)
		f->opts = *o;
	else
		fetch_opts_default(&f->opts);
	atomic_init(&f->rng, seed_rng(f));
	f->url = target;
	fetch_set_shown(f);
	f->be = &fetch_http_backend;
	rc = copy_cafile(f, err, errlen);
	if (rc == 0)
		rc = fetch_http_document(f, flags & FETCH_DOC_HEAD, max, body,
					 len, err, errlen);
	fetch_free(f);
	return rc;
}

void fetch_free(struct fetch *f)
{
	if (!f)
		return;
	if (f->be)
		f->be->close(f);
	free(f->url);
	free(f->path);
	free(f->identity);
	free(f->cafile);
	free(f->adopted);
	pthread_mutex_destroy(&f->adopt_lock);
	free(f);
}

uint64_t fetch_size(const struct fetch *f)
{
	return f->size;
}

const char *fetch_url(const struct fetch *f)
{
	return f->url;
}

const char *fetch_url_shown(const struct fetch *f)
{
	return f->shown;
}

void fetch_set_shown(struct fetch *f)
{
	util_url_redact(f->url, f->shown, sizeof(f->shown));
}

const char *fetch_identity(const struct fetch *f)
{
	return f->identity ? f->identity : "";
}

uint64_t fetch_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int fetch_range(struct fetch *f, uint64_t off, size_t len, void *buf,
		unsigned flags)
{
	return fetch_range_until(f, off, len, buf, flags, 0);
}

int fetch_range_until(struct fetch *f, uint64_t off, size_t len, void *buf,
		      unsigned flags, uint64_t deadline_ns)
{
	if (off > f->size || len > f->size - off) {
		log_err(
		    "%s: range %llu+%zu is outside the artifact (%llu bytes)",
		    f->shown, (unsigned long long)off, len,
		    (unsigned long long)f->size);
		return -EINVAL;
	}
	if (len == 0)
		return 0;
	if (deadline_ns && fetch_now_ns() >= deadline_ns) {
		log_err(
		    "%s: bytes %llu-%llu: deadline passed before the request",
		    f->shown, (unsigned long long)off,
		    (unsigned long long)(off + len - 1));
		atomic_fetch_add(&f->errors, 1);
		return -ETIMEDOUT;
	}
	return f->be->range(f, off, len, buf, flags, deadline_ns);
}

int fetch_range_iov(struct fetch *f, uint64_t off, const struct fetch_iov *iov,
		    size_t n, unsigned flags, uint64_t deadline_ns)
{
	uint64_t total = 0;
	size_t k;
	int rc = 0;

	for (k = 0; k < n; k++)
		total += iov[k].len;
	if (off > f->size || total > f->size - off) {
		log_err("%s: range %llu+%llu is outside the artifact (%llu "
			"bytes)",
			f->shown, (unsigned long long)off,
			(unsigned long long)total, (unsigned long long)f->size);
		return -EINVAL;
	}
	if (total == 0)
		return 0;
	if (f->be->range_iov) {
		if (deadline_ns && fetch_now_ns() >= deadline_ns)
			return -ETIMEDOUT;
		return f->be->range_iov(f, off, iov, n, flags, deadline_ns);
	}
	for (k = 0; k < n && !rc; k++) {
		rc = fetch_range_until(f, off, iov[k].len, iov[k].base, flags,
				       deadline_ns);
		off += iov[k].len;
	}
	return rc;
}

int fetch_stream(struct fetch *f, uint64_t off, uint64_t end, fetch_sink sink,
		 void *arg)
{
	if (end == 0)
		end = f->size;
	if (off > end || end > f->size) {
		log_err("%s: stream %llu-%llu is outside the artifact (%llu "
			"bytes)",
			f->shown, (unsigned long long)off,
			(unsigned long long)end, (unsigned long long)f->size);
		return -EINVAL;
	}
	if (off == end)
		return 0;
	return f->be->stream(f, off, end, sink, arg);
}

void fetch_get_stats(const struct fetch *f, struct fetch_stats *st)
{
	st->requests = atomic_load(&f->requests);
	st->bytes = atomic_load(&f->bytes);
	st->retries = atomic_load(&f->retries);
	st->errors = atomic_load(&f->errors);
	st->adoptions = atomic_load(&f->adoptions);
}

void fetch_adopt_validators(struct fetch *f, bool on)
{
	atomic_store(&f->adopt, on);
}

bool fetch_adopting(const struct fetch *f)
{
	return atomic_load(&f->adopt);
}

int fetch_adopt(struct fetch *f, const char *what, const char *now)
{
	const char *last;
	char *copy;

	pthread_mutex_lock(&f->adopt_lock);
	last = f->adopted ? f->adopted : fetch_identity(f);
	if (strcmp(last, now) == 0) {
		pthread_mutex_unlock(&f->adopt_lock);
		return 0;
	}
	copy = strdup(now);
	if (!copy) {
		pthread_mutex_unlock(&f->adopt_lock);
		return -ENOMEM;
	}
	log_warn("%s of %s changed from %s to %s; blocks are verified by "
		 "digest, adopted",
		 what, f->shown, last, now);
	free(f->adopted);
	f->adopted = copy;
	atomic_fetch_add(&f->adoptions, 1);
	pthread_mutex_unlock(&f->adopt_lock);
	return 0;
}

int fetch_changed(struct fetch *f, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	if (atomic_exchange(&f->change_logged, true))
		return -EIO;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	log_err("artifact changed %s: %s (%s)",
		f->be == &fetch_file_backend ? "on disk" : "on the server",
		what, f->shown);
	return -EIO;
}

/* splitmix64 over an atomic counter: cheap, lock-free, good enough jitter */
static uint64_t next_random(struct fetch *f)
{
	uint64_t z = atomic_fetch_add(&f->rng, 0x9e3779b97f4a7c15ULL);

	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int fetch_backoff(struct fetch *f, unsigned attempt, uint64_t min_ms,
		  uint64_t deadline_ns)
{
	uint64_t ms = f->opts.backoff_ms, cap = f->opts.backoff_max_ms;
	struct timespec ts;

	for (unsigned i = 0; i < attempt && ms < cap; i++)
		ms *= 2;
	if (ms > cap)
		ms = cap;
	/* +-50%: [ms/2, ms*3/2) */
	if (ms > 1)
		ms = ms / 2 + next_random(f) % ms;
	if (ms < min_ms)
		ms = min_ms;
	if (ms > cap && cap > 0)
		ms = cap;
	if (deadline_ns && fetch_now_ns() + ms * 1000000u >= deadline_ns)
		return -ETIMEDOUT;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}

/* ---- sources given as functions ---- */

struct ops_priv {
	const struct fetch_source_ops *ops;
	void *arg;
};

static int ops_open(struct fetch *f, char *err, size_t errlen)
{
	(void)f, (void)err, (void)errlen;
	return 0;
}

static void ops_close(struct fetch *f)
{
	free(f->priv);
	f->priv = NULL;
}

static int ops_range(struct fetch *f, uint64_t off, size_t len, void *buf,
		     unsigned flags, uint64_t deadline_ns)
{
	struct ops_priv *p = f->priv;
	int rc;

	(void)deadline_ns; /* checked before the call; the source may block */
	atomic_fetch_add(&f->requests, 1);
	rc = p->ops->range(p->arg, off, len, buf, flags);
	if (!rc)
		atomic_fetch_add(&f->bytes, len);
	return rc;
}

/* Streams in pieces of 1 MiB through the range function. */
static int ops_stream(struct fetch *f, uint64_t off, uint64_t end,
		      fetch_sink sink, void *arg)
{
	size_t piece = 1u << 20;
	unsigned char *buf = malloc(piece);
	int rc = buf ? 0 : -ENOMEM;

	while (!rc && off < end) {
		size_t n = end - off < piece ? (size_t)(end - off) : piece;

		rc = ops_range(f, off, n, buf, 0, 0);
		if (!rc)
			rc = sink(arg, buf, n);
		off += n;
	}
	free(buf);
	return rc;
}

static const struct fetch_backend fetch_ops_backend = {
    .name = "source",
    .open = ops_open,
    .close = ops_close,
    .range = ops_range,
    .stream = ops_stream,
};

struct fetch *fetch_open_source(const char *name, uint64_t size,
				const char *identity,
				const struct fetch_source_ops *ops, void *arg)
{
	struct fetch *f = fetch_new();
	struct ops_priv *p = calloc(1, sizeof(*p));

	if (!f || !p)
		goto fail;
	fetch_opts_default(&f->opts);
	f->be = &fetch_ops_backend;
	f->url = strdup(name);
	fetch_set_shown(f);
	f->identity = strdup(identity ? identity : "");
	if (!f->url || !f->identity)
		goto fail;
	p->ops = ops;
	p->arg = arg;
	f->priv = p;
	f->size = size;
	return f;
fail:
	free(p);
	if (f)
		f->be = NULL;
	fetch_free(f);
	return NULL;
}
