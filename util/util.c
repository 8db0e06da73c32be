/* SPDX-License-Identifier: MIT */
#include "sffs/util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *u;
	char *end;
	int shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end) {
		u = strchr(units, toupper((unsigned char)*end));
		if (!u)
			return -EINVAL;
		shift = 10 * (int)(u - units + 1);
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

char *util_format_size(uint64_t n, char *buf, size_t len)
{
	static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 " B", n);
	else
		snprintf(buf, len, "%.1f %s", v, names[i]);
	return buf;
}

int util_atomic_open(struct util_atomic *a, const char *path)
{
	int fd, rc;

	memset(a, 0, sizeof(*a));
	a->path = path;
	if (asprintf(&a->tmp, "%s.tmp.XXXXXX", path) < 0) {
		a->tmp = NULL;
		return -ENOMEM;
	}
	fd = mkstemp(a->tmp);
	if (fd >= 0 && !fchmod(fd, 0644))
		a->f = fdopen(fd, "wb");
	if (a->f)
		return 0;
	rc = -errno;
	if (fd >= 0) {
		close(fd);
		unlink(a->tmp);
	}
	free(a->tmp);
	a->tmp = NULL;
	return rc;
}

int util_atomic_finish(struct util_atomic *a, int rc)
{
	if (fflush(a->f) || fsync(fileno(a->f)))
		rc = rc ? rc : -errno;
	if (fclose(a->f) && !rc)
		rc = -errno;
	if (!rc && rename(a->tmp, a->path))
		rc = -errno;
	if (rc)
		unlink(a->tmp);
	free(a->tmp);
	memset(a, 0, sizeof(*a));
	return rc;
}

struct progress {
	const char *label;
	uint64_t total, done;
	double start, last;
	bool draw;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct progress *progress_new(const char *label, uint64_t total, bool force)
{
	struct progress *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->label = label;
	p->total = total;
	p->start = now_s();
	p->draw = force || isatty(STDERR_FILENO);
	return p;
}

static void progress_draw(struct progress *p, double t)
{
	char d[32], tot[32], r[32], eta[32] = "";
	double secs = t - p->start;
	double rate = secs > 0 ? (double)p->done / secs : 0;

	if (rate > 0 && p->total > p->done) {
		unsigned left = (unsigned)((double)(p->total - p->done) / rate);

		snprintf(eta, sizeof(eta), "  ETA %u:%02u", left / 60,
			 left % 60);
	}
	fprintf(stderr, "\r%s: %s / %s (%3.0f%%)  %s/s%s\033[K", p->label,
		util_format_size(p->done, d, sizeof(d)),
		util_format_size(p->total, tot, sizeof(tot)),
		p->total ? 100.0 * (double)p->done / (double)p->total : 100.0,
		util_format_size((uint64_t)rate, r, sizeof(r)), eta);
}

void progress_update(struct progress *p, uint64_t done)
{
	double t;

	if (!p)
		return;
	p->done = done;
	if (!p->draw)
		return;
	t = now_s();
	if (t - p->last < 0.2)
		return;
	p->last = t;
	progress_draw(p, t);
}

void progress_finish(struct progress *p)
{
	if (!p)
		return;
	if (p->draw) {
		progress_draw(p, now_s());
		fputc('\n', stderr);
	}
	free(p);
}

void util_cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

int util_default_cache_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int n;

	if (geteuid() == 0)
		n = snprintf(buf, len, "/var/cache/sffs");
	else if (xdg && *xdg)
		n = snprintf(buf, len, "%s/sffs", xdg);
	else if (home && *home)
		n = snprintf(buf, len, "%s/.cache/sffs", home);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
