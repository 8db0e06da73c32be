/* SPDX-License-Identifier: MIT */
/*
 * setup.c - what the daemon sets up from its options before it opens
 * anything: the trust set (-o trust/keyring/verify, and the transport
 * rules under trust), the route (-o mirrors/proxies) and the disk tier
 * (-o cache_size).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "sffs/disk.h"
#include "sffs/fetch.h"
#include "sffs/log.h"
#include "sffs/trust.h"
#include "sffs/util.h"

static bool is_url(const char *s)
{
	return strstr(s, "://") && strncmp(s, "file://", 7);
}

/* A keyring from a URL is offered, not trusted: its keys count only
 * through trust=. A local file is the operator's own. */
static int add_keyring(const struct cfg *cfg, struct trust *t)
{
	struct fetch_opts fo;
	char err[512], *body = NULL;
	size_t len = 0;
	int rc;

	if (!is_url(cfg->keyring)) {
		rc = trust_add_keyring_file(t, cfg->keyring, err, sizeof(err));
		goto out;
	}
	fill_fetch_opts(cfg, &fo);
	rc = fetch_document(cfg->keyring, &fo, 0, TRUST_MAX_KEYS, &body, &len,
			    err, sizeof(err));
	if (!rc)
		rc = trust_add_keys(t, body, len, false, err, sizeof(err));
	free(body);
out:
	if (rc < 0)
		log_err("keyring %s: %s", cfg->keyring, err);
	return rc < 0 ? rc : 0;
}

static bool plain_http(const char *s)
{
	return s && !strncasecmp(s, "http://", 7);
}

/* Under trust every byte is verified, but plain http:// and -o insecure
 * still let anyone on the path read what is read and answer with an old
 * signed build or a denial: refused, unless the operator says
 * verify=off (nothing verified) or allow_insecure (verified, transport
 * accepted as it is). 0, or -EINVAL after saying why. */
static int weak_transport(const struct cfg *cfg)
{
	const char *what = cfg->insecure		  ? "-o insecure"
			   : plain_http(cfg->source)	  ? cfg->source
			   : plain_http(cfg->bc_base)	  ? cfg->bc_base
			   : plain_http(cfg->s3_endpoint) ? cfg->s3_endpoint
			   : plain_http(cfg->mirrors)	  ? cfg->mirrors
			   : plain_http(cfg->index)	  ? cfg->index
			   : plain_http(cfg->signature)	  ? cfg->signature
							  : NULL;
	char shown[UTIL_URL_SHOWN_MAX];

	if (!what)
		return 0;
	util_url_redact(what, shown, sizeof(shown));
	if (cfg->allow_insecure) {
		log_warn("trust over %s (allow_insecure): signatures are "
			 "checked, but what is read is readable and "
			 "replayable on the network",
			 shown);
		return 0;
	}
	log_err("trust over %s: refused, since anyone on the network could "
		"read what is read or answer with an older signed build (use "
		"https:// with TLS checked; or -o allow_insecure to verify "
		"signatures over it anyway, or -o verify=off)",
		shown);
	return -EINVAL;
}

/* The trust set -o trust/keyring/verify ask for: *out NULL when nothing
 * is verified. 0, or -EINVAL after logging why. */
int fs_build_trust(const struct cfg *cfg, struct trust **out)
{
	bool off = cfg->verify && !strcmp(cfg->verify, "off");
	char err[256], fprs[512];
	struct trust *t;

	*out = NULL;
	if (cfg->verify && !off && strcmp(cfg->verify, "require")) {
		log_err("bad verify value '%s' (require or off)", cfg->verify);
		return -EINVAL;
	}
	if (off) {
		if (cfg->trust || cfg->keyring)
			log_warn("verify=off: serving artifacts without "
				 "checking their signatures");
		return 0;
	}
	if (!cfg->trust && !cfg->keyring) {
		if (cfg->verify)
			log_err("verify=require needs -o trust=FPR or "
				"-o keyring=FILE");
		else
			log_warn("no -o trust=FPR: artifacts are served "
				 "unverified");
		return cfg->verify ? -EINVAL : 0;
	}
	t = trust_new();
	if (!t)
		return -ENOMEM;
	if (cfg->trust &&
	    trust_add_fpr_list(t, cfg->trust, err, sizeof(err)) < 0) {
		log_err("trust=%s: %s", cfg->trust, err);
		goto fail;
	}
	if (cfg->keyring && add_keyring(cfg, t))
		goto fail;
	if (!trust_count(t)) {
		log_err("no key is trusted: keys fetched from %s count only "
			"through -o trust=FPR",
			cfg->keyring);
		goto fail;
	}
	if (weak_transport(cfg))
		goto fail;
	trust_describe(t, fprs, sizeof(fprs));
	if (!cfg->quiet)
		log_info("verifying every artifact: trusted %s", fprs);
	*out = t;
	return 0;
fail:
	trust_free(t);
	return -EINVAL;
}

/* Mirrors and proxies (fetch.h): the ring's base is the catalog's base,
 * or the directory of a single artifact. 0, or 1 after saying why. */
int fs_setup_route(const struct cfg *cfg)
{
	struct fetch_route_opts ro = {.base = cfg->source,
				      .base_is_dir = is_catalog(cfg->source),
				      .mirrors = cfg->mirrors,
				      .proxies = cfg->proxies,
				      .host_reset_after_s = 1800,
				      .proxy_reset_after_s = 300};
	struct fetch_opts fo;
	char err[256];

	if (parse_seconds("host_reset_after", cfg->host_reset_after,
			  &ro.host_reset_after_s) ||
	    parse_seconds("proxy_reset_after", cfg->proxy_reset_after,
			  &ro.proxy_reset_after_s))
		return 1;
	fill_fetch_opts(cfg, &fo);
	ro.fo = &fo;
	if (fetch_route_setup(&ro, err, sizeof(err))) {
		log_err("mirrors/proxies: %s", err);
		return 1;
	}
	/* log lines are redacted as they are written (log.c) */
	if (cfg->mirrors && !cfg->quiet)
		log_info("servers: %s, then %s", cfg->source, cfg->mirrors);
	if (cfg->proxies && !cfg->quiet)
		log_info("proxies: %s", cfg->proxies);
	return 0;
}

/* The disk tier of verified blocks (-o cache_size, under -o cache_dir's
 * blocks/), or none when cache_size is 0 or absent. 0, or -errno after
 * logging (asked for and not had: the operator wants to know at mount,
 * not at the first reboot with the origin down). */
int fs_open_disk(const struct cfg *cfg, struct disk **out)
{
	char dir[PATH_MAX];
	uint64_t size = 0;
	int rc;

	*out = NULL;
	if (parse_size_opt("cache_size", cfg->cache_size, 0, UINT64_MAX, &size))
		return -EINVAL;
	if (!size)
		return 0;
	if (cfg->cache_dir && !strcmp(cfg->cache_dir, "none")) {
		log_err("cache_size needs a cache directory (cache_dir=none)");
		return -EINVAL;
	}
	if (cfg->cache_dir)
		rc = snprintf(dir, sizeof(dir), "%s", cfg->cache_dir) >=
			     (int)sizeof(dir)
			 ? -ENAMETOOLONG
			 : 0;
	else
		rc = util_default_cache_dir(dir, sizeof(dir));
	if (rc) {
		log_err("cache_size: no cache directory: %s", strerror(-rc));
		return rc;
	}
	*out = disk_new(dir, size);
	if (!*out)
		return -errno;
	if (!cfg->quiet) {
		struct disk_stats st;
		char used[32], quota[32];

		disk_get_stats(*out, &st);
		log_info("disk cache %s/blocks: %s of %s", dir,
			 util_format_size(st.used, used, sizeof(used)),
			 util_format_size(st.quota, quota, sizeof(quota)));
	}
	return 0;
}
