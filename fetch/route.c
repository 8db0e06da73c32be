/* SPDX-License-Identifier: MIT */
/*
 * route.c - where a request goes: which server of the ring (the origin's
 * base and its mirrors) and which proxy (groups of proxies, or none).
 *
 * One process-wide state, as CernVM-FS keeps one per download manager:
 * every fetch object of the process follows the same current host and
 * proxy, so that one failover moves them all and a failing server is not
 * tried again by each artifact in turn. Each attempt takes a snapshot
 * (route_pick) and reports how it ended (route_fault, route_ok); a
 * failover happens only if nobody moved the route since that snapshot
 * (a generation number), so a burst of failures of one server moves it
 * once. After host_reset_after (proxy_reset_after) seconds away from the
 * first host (the first proxy group) the route goes back to it.
 */
#include "fetch_i.h"

#include "sffs/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct proxy_group {
	unsigned n;
	char *url[ROUTE_MAX]; /* "" is DIRECT */
};

static struct route {
	pthread_mutex_t lock;
	bool set;
	char *base; /* the origin's base, ending in '/' */
	size_t baselen;
	unsigned nhosts;
	char *host[ROUTE_MAX]; /* host[0] is base */
	unsigned cur_host;
	uint64_t host_gen, host_since_ns;
	unsigned ngroups; /* 0: no proxies configured (libcurl's own) */
	struct proxy_group g[ROUTE_MAX];
	unsigned cur_group, cur_proxy, failed_in_group;
	uint64_t proxy_gen, proxy_since_ns;
	unsigned host_reset_s, proxy_reset_s;
	uint64_t host_failovers, proxy_failovers;
	bool offline;
	uint64_t offline_since_ns, offline_count;
	unsigned rng;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void route_clear(void)
{
	free(R.base);
	for (unsigned i = 1; i < R.nhosts; i++)
		free(R.host[i]);
	for (unsigned i = 0; i < R.ngroups; i++)
		for (unsigned k = 0; k < R.g[i].n; k++)
			free(R.g[i].url[k]);
	memset(&R.set, 0, sizeof(R) - offsetof(struct route, set));
}

/* s with a '/' at its end (malloc'd), or NULL. */
static char *with_slash(const char *s, size_t len)
{
	bool slash = len && s[len - 1] == '/';
	char *p = malloc(len + 2);

	if (!p)
		return NULL;
	memcpy(p, s, len);
	if (!slash)
		p[len++] = '/';
	p[len] = '\0';
	return p;
}

static bool is_http(const char *s, size_t len)
{
	return (len > 7 && !strncasecmp(s, "http://", 7)) ||
	       (len > 8 && !strncasecmp(s, "https://", 8));
}

/* Splits "A;B;C" on sep into trimmed pieces; calls add for each. */
static int split(const char *s, char sep,
		 int (*add)(const char *p, size_t len, void *arg), void *arg)
{
	while (s && *s) {
		const char *end = strchr(s, sep);
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *p = s;
		int rc;

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len && (rc = add(p, len, arg)) < 0)
			return rc;
		s = end ? end + 1 : NULL;
	}
	return 0;
}

static int add_host(const char *p, size_t len, void *arg)
{
	char *err = arg;

	if (R.nhosts == ROUTE_MAX) {
		snprintf(err, 256, "more than %u servers", ROUTE_MAX);
		return -EINVAL;
	}
	if (!is_http(p, len)) {
		snprintf(err, 256, "mirror '%.*s' is not an http(s):// URL",
			 (int)(len > 128 ? 128 : len), p);
		return -EINVAL;
	}
	R.host[R.nhosts] = with_slash(p, len);
	if (!R.host[R.nhosts])
		return -ENOMEM;
	R.nhosts++;
	return 0;
}

static int add_proxy(const char *p, size_t len, void *arg)
{
	struct proxy_group *g = &R.g[R.ngroups];
	char *err = arg;

	if (g->n == ROUTE_MAX) {
		snprintf(err, 256, "more than %u proxies in a group",
			 ROUTE_MAX);
		return -EINVAL;
	}
	if (len == 6 && !strncasecmp(p, "DIRECT", 6)) {
		g->url[g->n] = strdup("");
	} else if (!is_http(p, len)) {
		snprintf(err, 256,
			 "proxy '%.*s' is not an http(s):// URL or DIRECT",
			 (int)(len > 128 ? 128 : len), p);
		return -EINVAL;
	} else {
		g->url[g->n] = strndup(p, len);
	}
	if (!g->url[g->n])
		return -ENOMEM;
	g->n++;
	return 0;
}

static int add_group(const char *p, size_t len, void *arg)
{
	char *err = arg, *grp;
	int rc;

	if (R.ngroups == ROUTE_MAX) {
		snprintf(err, 256, "more than %u proxy groups", ROUTE_MAX);
		return -EINVAL;
	}
	grp = strndup(p, len);
	if (!grp)
		return -ENOMEM;
	rc = split(grp, '|', add_proxy, arg);
	free(grp);
	if (rc < 0)
		return rc;
	if (R.g[R.ngroups].n)
		R.ngroups++;
	return 0;
}

/* A proxy of the current group, picked at random (the '|' rule). */
static void pick_in_group(void)
{
	R.cur_proxy = R.g[R.cur_group].n > 1
			  ? (unsigned)rand_r(&R.rng) % R.g[R.cur_group].n
			  : 0;
	R.failed_in_group = 0;
}

static const char *proxy_name(unsigned group, unsigned k)
{
	const char *u = R.g[group].url[k];

	return u[0] ? u : "DIRECT";
}

/* R.base from o->base: resolved as fetch_open would (s3://...), cut to
 * its directory unless it is one. Only an http(s) base has mirrors. */
static int route_base(const struct fetch_route_opts *o, char *why,
		      size_t whylen)
{
	enum fetch_kind kind;
	char *url = fetch_resolve_source(o->base, o->fo, &kind, why, whylen);
	size_t end;

	if (!url)
		return -EINVAL;
	if (kind != FETCH_KIND_HTTP || !is_http(url, strlen(url))) {
		free(url);
		return 0;
	}
	end = strcspn(url, "?#");
	if (!o->base_is_dir)
		while (end && url[end - 1] != '/')
			end--;
	R.base = with_slash(url, end);
	free(url);
	return R.base ? 0 : -ENOMEM;
}

int fetch_route_setup(const struct fetch_route_opts *o, char *err,
		      size_t errlen)
{
	char why[256] = "out of memory";
	int rc = -ENOMEM;

	pthread_mutex_lock(&R.lock);
	route_clear();
	if (!o ||
	    ((!o->mirrors || !*o->mirrors) && (!o->proxies || !*o->proxies))) {
		pthread_mutex_unlock(&R.lock);
		return 0;
	}
	R.rng = (unsigned)getpid() ^ (unsigned)fetch_now_ns();
	R.host_reset_s = o->host_reset_after_s;
	R.proxy_reset_s = o->proxy_reset_after_s;
	if (o->base && (rc = route_base(o, why, sizeof(why))) < 0)
		goto fail;
	if (R.base) {
		R.baselen = strlen(R.base);
		R.host[0] = R.base;
		R.nhosts = 1;
	} else if (o->mirrors && *o->mirrors) {
		snprintf(why, sizeof(why),
			 "mirrors need an http(s):// source to stand in for");
		rc = -EINVAL;
		goto fail;
	}
	if ((rc = split(o->mirrors, ';', add_host, why)) < 0 ||
	    (rc = split(o->proxies, ';', add_group, why)) < 0)
		goto fail;
	if (o->proxies && *o->proxies && !R.ngroups) {
		snprintf(why, sizeof(why), "no proxy in '%s'", o->proxies);
		rc = -EINVAL;
		goto fail;
	}
	if (R.ngroups)
		pick_in_group();
	R.set = true;
	pthread_mutex_unlock(&R.lock);
	return 0;
fail:
	snprintf(err, errlen, "%s", why);
	route_clear();
	pthread_mutex_unlock(&R.lock);
	return rc;
}

/* Back to the first host / proxy group once their time away is over. */
static void route_reset(uint64_t now)
{
	uint64_t s = 1000000000ull;

	if (R.cur_host && R.host_reset_s &&
	    now - R.host_since_ns >= R.host_reset_s * s) {
		log_info("back to server %s after %u s on %s", R.host[0],
			 R.host_reset_s, R.host[R.cur_host]);
		R.cur_host = 0;
		R.host_gen++;
		R.host_since_ns = now;
	}
	if (R.cur_group && R.proxy_reset_s &&
	    now - R.proxy_since_ns >= R.proxy_reset_s * s) {
		R.cur_group = 0;
		pick_in_group();
		R.proxy_gen++;
		R.proxy_since_ns = now;
		log_info("back to proxy %s after %u s",
			 proxy_name(0, R.cur_proxy), R.proxy_reset_s);
	}
}

int route_pick(const char *url, struct route_pick *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_lock(&R.lock);
	if (!R.set) {
		pthread_mutex_unlock(&R.lock);
		return 0;
	}
	route_reset(fetch_now_ns());
	p->routes = (R.nhosts ? R.nhosts : 1);
	for (unsigned i = 0; i < R.ngroups; i++)
		p->routes += R.g[i].n;
	p->host_gen = R.host_gen;
	p->proxy_gen = R.proxy_gen;
	if (R.ngroups) {
		p->has_proxy = true;
		snprintf(p->proxy, sizeof(p->proxy), "%s",
			 R.g[R.cur_group].url[R.cur_proxy]);
	}
	if (R.cur_host && url && !strncmp(url, R.base, R.baselen)) {
		const char *h = R.host[R.cur_host];
		size_t hl = strlen(h), rl = strlen(url + R.baselen);

		p->url = malloc(hl + rl + 1);
		if (!p->url) {
			pthread_mutex_unlock(&R.lock);
			return -ENOMEM;
		}
		memcpy(p->url, h, hl);
		memcpy(p->url + hl, url + R.baselen, rl + 1);
	}
	p->mirrored = R.nhosts > 1 && url && !strncmp(url, R.base, R.baselen);
	pthread_mutex_unlock(&R.lock);
	return 0;
}

void route_pick_free(struct route_pick *p)
{
	free(p->url);
	p->url = NULL;
}

static bool host_failover(const struct route_pick *p, const char *why)
{
	unsigned from = R.cur_host;

	if (!p->mirrored || p->host_gen != R.host_gen)
		return p->mirrored; /* moved since: a new host to try */
	R.cur_host = (R.cur_host + 1) % R.nhosts;
	R.host_gen++;
	R.host_failovers++;
	R.host_since_ns = fetch_now_ns();
	log_warn("server %s failed (%s): switching to %s", R.host[from], why,
		 R.host[R.cur_host]);
	return true;
}

static bool proxy_failover(const struct route_pick *p, const char *why)
{
	unsigned g = R.cur_group, k = R.cur_proxy;

	if (!p->has_proxy || p->proxy_gen != R.proxy_gen)
		return p->has_proxy;
	if (++R.failed_in_group < R.g[g].n) {
		R.cur_proxy = (R.cur_proxy + 1) % R.g[g].n;
	} else {
		R.cur_group = (R.cur_group + 1) % R.ngroups;
		pick_in_group();
	}
	if (R.cur_group == g && R.cur_proxy == k)
		return false; /* a single proxy: nowhere else to go */
	R.proxy_gen++;
	R.proxy_failovers++;
	R.proxy_since_ns = fetch_now_ns();
	log_warn("proxy %s failed (%s): switching to %s", proxy_name(g, k), why,
		 proxy_name(R.cur_group, R.cur_proxy));
	return true;
}

bool route_fault(const struct route_pick *p, enum route_fault kind,
		 const char *why)
{
	bool moved = false;

	if (kind == ROUTE_NONE)
		return false;
	pthread_mutex_lock(&R.lock);
	if (R.set) {
		/* a transport failure through a proxy is the proxy's */
		if (kind == ROUTE_TRANSPORT)
			kind = p->has_proxy && p->proxy[0] ? ROUTE_PROXY
							   : ROUTE_HOST;
		moved = kind == ROUTE_PROXY ? proxy_failover(p, why)
					    : host_failover(p, why);
	}
	pthread_mutex_unlock(&R.lock);
	return moved;
}

void route_result(const char *shown, int rc, const char *why)
{
	bool down = rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
		    rc == -ETIMEDOUT || rc == -ECONNRESET;
	uint64_t now;

	if (rc && !down)
		return;
	pthread_mutex_lock(&R.lock);
	now = fetch_now_ns();
	if (!rc && R.offline) {
		R.offline = false;
		log_warn("online again: %s answered after %.0f s offline",
			 shown, (double)(now - R.offline_since_ns) / 1e9);
	} else if (rc && !R.offline) {
		R.offline = true;
		R.offline_since_ns = now;
		R.offline_count++;
		log_warn("offline: no server answers (%s); serving what the "
			 "caches hold until one does",
			 why);
	}
	pthread_mutex_unlock(&R.lock);
}

void fetch_route_get_stats(struct fetch_route_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&R.lock);
	st->host_failovers = R.host_failovers;
	st->proxy_failovers = R.proxy_failovers;
	st->offline = R.offline;
	st->offline_count = R.offline_count;
	if (R.offline)
		st->offline_s =
		    (fetch_now_ns() - R.offline_since_ns) / 1000000000u;
	if (R.set && R.nhosts)
		util_url_redact(R.host[R.cur_host], st->host, sizeof(st->host));
	if (R.set && R.ngroups)
		util_url_redact(proxy_name(R.cur_group, R.cur_proxy), st->proxy,
				sizeof(st->proxy));
	pthread_mutex_unlock(&R.lock);
}

void fetch_report_corrupt(struct fetch *f)
{
	struct route_pick p;

	if (route_pick(f->url, &p))
		return;
	route_fault(&p, ROUTE_HOST, "a block failed its SHA-256 check twice");
	route_pick_free(&p);
}
