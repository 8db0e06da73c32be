/* SPDX-License-Identifier: MIT */
/*
 * test_route.c - mirrors and proxy groups (fetch/route.c): parsing,
 * the URL each attempt goes to, failover by fault class, one move per
 * burst of failures (generations), random picks within a group, and the
 * way back after host_reset_after.
 */
#include "check.h"

#include "../../fetch/fetch_i.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int setup(const char *base, bool dir, const char *mirrors,
		 const char *proxies, unsigned host_reset)
{
	struct fetch_route_opts o = {.base = base,
				     .base_is_dir = dir,
				     .mirrors = mirrors,
				     .proxies = proxies,
				     .host_reset_after_s = host_reset,
				     .proxy_reset_after_s = 300};
	char err[256];
	int rc = fetch_route_setup(&o, err, sizeof(err));

	if (rc)
		fprintf(stderr, "setup: %s\n", err);
	return rc;
}

/* The URL an attempt at url goes to now. */
static const char *where(const char *url, struct route_pick *p)
{
	static char buf[512];

	CHECK(route_pick(url, p) == 0);
	snprintf(buf, sizeof(buf), "%s", p->url ? p->url : url);
	return buf;
}

static void test_parse(void)
{
	CHECK(setup("https://o/sf/a.tar.gz", false, NULL, NULL, 0) == 0);
	CHECK(setup("https://o/sf/", true, "ftp://m/", NULL, 0) == -EINVAL);
	CHECK(setup("https://o/sf/", true, NULL, "socks://p", 0) == -EINVAL);
	CHECK(setup("https://o/sf/", true, NULL, " ; ;", 0) == -EINVAL);
	CHECK(setup("/local/a.tar.gz", false, "https://m/", NULL, 0) ==
	      -EINVAL);
	CHECK(setup("/local/a.tar.gz", false, NULL, "DIRECT", 0) == 0);
	CHECK(setup("https://o/sf/", true, "https://m1/x;https://m2/y/",
		    "http://p1:3128|http://p2:3128; DIRECT", 0) == 0);
	CHECK(setup(NULL, false, NULL, NULL, 0) == 0); /* nothing set */
}

static void test_mirrors(void)
{
	struct fetch_route_stats st;
	struct route_pick p, q;
	const char *u = "https://o/sf/25.11/noble/x.tar.gz?sig=1";

	CHECK(setup("https://o/sf/25.11/noble/x.tar.gz?sig=1", false,
		    "https://m1/base;https://m2/", NULL, 1800) == 0);
	CHECK(!strcmp(where(u, &p), u));
	CHECK(p.mirrored && !p.has_proxy && p.routes == 3);
	/* an answer (403, 416...) moves nothing */
	CHECK(!route_fault(&p, ROUTE_NONE, "403"));
	/* two failures seen with the same snapshot: one move */
	CHECK(route_pick(u, &q) == 0);
	CHECK(route_fault(&p, ROUTE_HOST, "HTTP 503"));
	CHECK(route_fault(&q, ROUTE_HOST, "HTTP 503")); /* moved already */
	route_pick_free(&p);
	route_pick_free(&q);
	CHECK(!strcmp(where(u, &p), "https://m1/base/x.tar.gz?sig=1"));
	fetch_route_get_stats(&st);
	CHECK_EQ_U64(st.host_failovers, 1);
	CHECK(!strcmp(st.host, "https://m1/base/"));
	/* without a proxy a transport failure is the host's */
	CHECK(route_fault(&p, ROUTE_TRANSPORT, "connection refused"));
	route_pick_free(&p);
	CHECK(!strcmp(where(u, &p), "https://m2/x.tar.gz?sig=1"));
	CHECK(route_fault(&p, ROUTE_HOST, "x"));
	route_pick_free(&p);
	CHECK(!strcmp(where(u, &p), u)); /* the ring wraps */
	route_pick_free(&p);
	/* a URL outside the base (a keyring elsewhere) is left alone */
	CHECK(!strcmp(where("https://keys/k.asc", &p), "https://keys/k.asc"));
	CHECK(!p.mirrored);
	CHECK(!route_fault(&p, ROUTE_HOST, "x"));
	route_pick_free(&p);
	fetch_route_get_stats(&st);
	CHECK_EQ_U64(st.host_failovers, 3);
}

static void test_reset(void)
{
	struct route_pick p;
	const char *u = "https://o/sf/x";

	CHECK(setup("https://o/sf/", true, "https://m1/", NULL, 1) == 0);
	CHECK(route_pick(u, &p) == 0);
	CHECK(route_fault(&p, ROUTE_HOST, "x"));
	route_pick_free(&p);
	CHECK(!strcmp(where(u, &p), "https://m1/x"));
	route_pick_free(&p);
	sleep(1);
	CHECK(!strcmp(where(u, &p), u)); /* back after host_reset_after */
	route_pick_free(&p);
}

static void test_proxies(void)
{
	struct fetch_route_stats st;
	struct route_pick p;
	const char *u = "http://o/sf/x";
	bool seen1 = false, seen2 = false;

	/* '|' picks at random: both members come up over many setups */
	for (int i = 0; i < 64 && !(seen1 && seen2); i++) {
		CHECK(setup(u, false, NULL, "http://p1|http://p2;DIRECT", 0) ==
		      0);
		CHECK(route_pick(u, &p) == 0);
		seen1 |= !strcmp(p.proxy, "http://p1");
		seen2 |= !strcmp(p.proxy, "http://p2");
		route_pick_free(&p);
		usleep(1000);
	}
	CHECK(seen1 && seen2);
	CHECK(setup(u, false, NULL, "http://p1|http://p2;http://p3;DIRECT",
		    0) == 0);
	CHECK(route_pick(u, &p) == 0);
	CHECK(p.has_proxy && p.routes == 5);
	/* a server's fault does not move the proxy (no mirrors here) */
	CHECK(!route_fault(&p, ROUTE_HOST, "HTTP 502"));
	/* through a proxy, a transport failure is the proxy's: the other
	 * of the group, then the next group, then DIRECT */
	CHECK(route_fault(&p, ROUTE_TRANSPORT, "refused"));
	route_pick_free(&p);
	CHECK(route_pick(u, &p) == 0);
	CHECK(!strcmp(p.proxy, "http://p1") || !strcmp(p.proxy, "http://p2"));
	CHECK(route_fault(&p, ROUTE_TRANSPORT, "refused"));
	route_pick_free(&p);
	CHECK(route_pick(u, &p) == 0);
	CHECK(!strcmp(p.proxy, "http://p3"));
	CHECK(route_fault(&p, ROUTE_PROXY, "refused"));
	route_pick_free(&p);
	CHECK(route_pick(u, &p) == 0);
	CHECK(p.has_proxy && p.proxy[0] == '\0'); /* DIRECT */
	fetch_route_get_stats(&st);
	CHECK(!strcmp(st.proxy, "DIRECT"));
	CHECK_EQ_U64(st.proxy_failovers, 3);
	/* DIRECT failing is the host's (no proxy in the way) */
	CHECK(!route_fault(&p, ROUTE_TRANSPORT, "refused"));
	route_pick_free(&p);
}

static void test_offline(void)
{
	struct fetch_route_stats st;

	route_result("u", -ECONNREFUSED, "cannot connect");
	fetch_route_get_stats(&st);
	CHECK(st.offline);
	route_result("u", -ENOENT, "404"); /* an answer: still offline */
	fetch_route_get_stats(&st);
	CHECK(st.offline);
	route_result("u", 0, "");
	fetch_route_get_stats(&st);
	CHECK(!st.offline && st.offline_count >= 1);
}

int main(void)
{
	test_parse();
	test_mirrors();
	test_reset();
	test_proxies();
	test_offline();
	CHECK(setup(NULL, false, NULL, NULL, 0) == 0);
	return check_done();
}
