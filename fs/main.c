/* SPDX-License-Identifier: MIT */
/*
 * main.c - sffs [options] SOURCE MOUNTPOINT
 *
 * Single artifact: opens it, indexes it in the foreground (with a
 * progress line on a terminal), mounts, and only then detaches, so that
 * `sffs URL /mnt && ls /mnt` works in scripts. A SOURCE ending in '/' is
 * a catalog base: it is listed (or probed) before the mount, and each
 * artifact is attached on first use (catalog.h).
 *
 * Options come from -o, from a config file (-o config=FILE: one option
 * per line, '#' comments; command-line options win) and so from
 * /etc/fstab through mount.fuse3.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sffs/buildcache.h"
#include "sffs/catalog.h"
#include "sffs/disk.h"
#include "sffs/fetch.h"
#include "sffs/log.h"
#include "sffs/trust.h"
#include "sffs/util.h"
#include "cfg.h"
#include "fs.h"
#include "sffs/open.h"

#define CFG_OPT(t, p, v)                                                       \
	{                                                                      \
		t, offsetof(struct cfg, p), v                                  \
	}
static const struct fuse_opt cfg_opts[] = {
    CFG_OPT("cache_mem=%s", cache_mem, 0),
    CFG_OPT("span=%s", span, 0),
    CFG_OPT("index=%s", index, 0),
    CFG_OPT("cache_dir=%s", cache_dir, 0),
    CFG_OPT("cache_size=%s", cache_size, 0),
    CFG_OPT("readahead=%s", readahead, 0),
    CFG_OPT("block=%s", block, 0),
    CFG_OPT("signature=%s", signature, 0),
    CFG_OPT("source=%s", source_opt, 0),
    CFG_OPT("oom_score_adj=%s", oom_score_adj, 0),
    CFG_OPT("window_mem=%s", window_mem, 0),
    CFG_OPT("timeout=%u", timeout, 0),
    CFG_OPT("max_fetches=%u", max_fetches, 0),
    CFG_OPT("retries=%u", retries, 0),
    CFG_OPT("connect_timeout=%u", connect_timeout, 0),
    CFG_OPT("insecure", insecure, 1),
    CFG_OPT("allow_insecure", allow_insecure, 1),
    CFG_OPT("mirrors=%s", mirrors, 0),
    CFG_OPT("proxies=%s", proxies, 0),
    CFG_OPT("host_reset_after=%s", host_reset_after, 0),
    CFG_OPT("proxy_reset_after=%s", proxy_reset_after, 0),
    CFG_OPT("cafile=%s", cafile, 0),
    CFG_OPT("layout=%s", layout, 0),
    CFG_OPT("template=%s", tmpl, 0),
    CFG_OPT("arch=%s", arch, 0),
    CFG_OPT("s3_endpoint=%s", s3_endpoint, 0),
    CFG_OPT("versions=%s", versions, 0),
    CFG_OPT("toolchains=%s", toolchains, 0),
    CFG_OPT("refresh=%s", refresh, 0),
    CFG_OPT("negative_ttl=%s", negative_ttl, 0),
    CFG_OPT("release_after=%s", release_after, 0),
    CFG_OPT("module_root=%s", module_root, 0),
    CFG_OPT("buildcache_base=%s", bc_base, 0),
    CFG_OPT("buildcache=%s", bc_templates, 0),
    CFG_OPT("norelocate", norelocate, 1),
    CFG_OPT("relocate=%s", relocate, 0),
    CFG_OPT("trust=%s", trust, 0),
    CFG_OPT("keyring=%s", keyring, 0),
    CFG_OPT("verify=%s", verify, 0),
    CFG_OPT("allow_rollback", allow_rollback, 1),
    CFG_OPT("config=%s", config, 0),
    CFG_OPT("verbose", verbose, 1),
    CFG_OPT("quiet", quiet, 1),
    CFG_OPT("-h", show_help, 1),
    CFG_OPT("--help", show_help, 1),
    CFG_OPT("-V", show_version, 1),
    CFG_OPT("--version", show_version, 1),
    FUSE_OPT_END};

/* The first non-option is SOURCE (taken out), the second the mount point
 * (left for fuse_parse_cmdline). */
static int cfg_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cfg *cfg = data;

	(void)outargs;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (cfg->nargs++ == 0 && !cfg->source_opt) {
		cfg->source = strdup(arg);
		return cfg->source ? 0 : -1;
	}
	return 1;
}

int parse_size_opt(const char *name, const char *val, uint64_t min,
		   uint64_t max, uint64_t *out)
{
	if (!val)
		return 0;
	if (util_parse_size(val, out) || *out < min || *out > max) {
		log_err("bad %s value '%s'", name, val);
		return -EINVAL;
	}
	return 0;
}

static int parse_read_opts(const struct cfg *cfg, struct archive_opts *ao)
{
	uint64_t block = ao->block_size;

	if (parse_size_opt("readahead", cfg->readahead, 0, UINT64_C(1) << 30,
			   &ao->readahead) ||
	    parse_size_opt("window_mem", cfg->window_mem, 0, UINT64_MAX,
			   &ao->window_mem) ||
	    parse_size_opt("block", cfg->block, BLOCKS_MIN_SIZE,
			   BLOCKS_MAX_SIZE, &block))
		return -EINVAL;
	ao->block_size = (uint32_t)block;
	if (cfg->timeout) {
		ao->timeout_s = cfg->timeout;
		ao->blocks.timeout_s = cfg->timeout;
	}
	if (cfg->max_fetches > 64) {
		log_err("bad max_fetches value %u (1 to 64)", cfg->max_fetches);
		return -EINVAL;
	}
	if (cfg->max_fetches)
		ao->blocks.max_fetches = cfg->max_fetches;
	/* Verified blocks held: at least the readahead (compressed bytes
	 * are fewer than the file bytes it covers). */
	ao->blocks.mem = ao->readahead > (8u << 20) ? ao->readahead : 8u << 20;
	return 0;
}

static int parse_sizes(const struct cfg *cfg, struct archive_opts *ao)
{
	if (parse_read_opts(cfg, ao))
		return -EINVAL;
	if (cfg->cache_mem && util_parse_size(cfg->cache_mem, &ao->cache_mem)) {
		log_err("bad cache_mem value '%s'", cfg->cache_mem);
		return -EINVAL;
	}
	if (cfg->span &&
	    (util_parse_size(cfg->span, &ao->spacing) || ao->spacing < 65536)) {
		log_err("bad span value '%s' (at least 64K)", cfg->span);
		return -EINVAL;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void fill_fetch_opts(const struct cfg *cfg, struct fetch_opts *fo)
{
	fetch_opts_default(fo);
	if (cfg->retries)
		fo->retries = cfg->retries;
	if (cfg->connect_timeout)
		fo->connect_timeout_s = cfg->connect_timeout;
	fo->insecure = cfg->insecure;
	fo->cafile = cfg->cafile;
	fo->s3_endpoint = cfg->s3_endpoint;
}

/* Opens the artifact (open.h) and says how and how fast. */
static int open_artifact(const struct cfg *cfg, struct archive_opts *ao,
			 const struct trust *trust, struct opened *o)
{
	struct open_cfg oc = {.source = cfg->source,
			      .index = cfg->index,
			      .cache_dir = cfg->cache_dir,
			      .signature = cfg->signature,
			      .quiet = cfg->quiet,
			      .trust = trust,
			      .allow_rollback = cfg->allow_rollback};
	struct archive_stats st;
	char sz[32], mem[32];
	double t0 = now_s();

	fill_fetch_opts(cfg, &oc.fo);
	if (artifact_open(&oc, ao, o))
		return 1;
	archive_get_stats(o->ar, &st);
	if (archive_seek_index(o->ar)->codec == SEEK_ZSTD &&
	    archive_seek_index(o->ar)->n == 1 && fetch_size(o->f) > (4u << 20))
		log_warn("%s is a single zstd frame: every read decodes it "
			 "from its start. Make it seekable with `sffs-index "
			 "--repack IN.tar.zst OUT.tar.zst` and "
			 "publish that",
			 fetch_url_shown(o->f));
	if (!cfg->quiet)
		log_info("%s: %s %s, %" PRIu32 " inodes, %zu seek points, "
			 "ready in %.2f s (%s%s%s), index memory %s",
			 fetch_url_shown(o->f),
			 util_format_size(fetch_size(o->f), sz, sizeof(sz)),
			 seek_codec_name(archive_seek_index(o->ar)->codec),
			 tree_count(archive_tree(o->ar)),
			 archive_seek_index(o->ar)->n, now_s() - t0, o->how,
			 o->signer[0] ? ", signed by " : "", o->signer,
			 util_format_size(st.index_mem, mem, sizeof(mem)));
	return 0;
}

/* -o relocate=: the artifact's ELF files relocated to the mount (or to
 * module_root, the path programs see it at). */
static int relocate_artifact(const struct cfg *cfg, struct archive *ar,
			     const char *mountpoint)
{
	char err[512], *root;
	int rc;

	if (!cfg->relocate)
		return 0;
	root = cfg->module_root ? strdup(cfg->module_root)
				: realpath(mountpoint, NULL);
	if (!root) {
		log_err("cannot resolve %s: %s", mountpoint, strerror(errno));
		return -1;
	}
	rc = archive_relocate_tree(ar, cfg->relocate, root, root, err,
				   sizeof(err));
	if (rc)
		log_err("%s", err);
	free(root);
	return rc ? -1 : 0;
}

int parse_seconds(const char *name, const char *val, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!val)
		return 0;
	errno = 0;
	v = strtoul(val, &end, 10);
	if (errno || end == val || *end || v > 100u * 365 * 86400) {
		log_err("bad %s value '%s' (seconds)", name, val);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* Lists (or probes) the catalog before the mount, so that the first `ls`
 * shows it; a base that cannot be listed now is still mounted (names are
 * probed as they are looked up) after a warning. */
static struct catalog *open_catalog(const struct cfg *cfg,
				    const struct archive_opts *ao,
				    const struct trust *trust,
				    const char *mountpoint,
				    struct catalog_opts *out)
{
	struct catalog_opts co;
	struct catalog_stats st;
	struct catalog *cat;
	char err[1024], shown[UTIL_URL_SHOWN_MAX], *root = NULL;
	double t0 = now_s();
	int rc;

	catalog_opts_default(&co);
	co.base = cfg->source;
	if (cfg->layout)
		co.layout = cfg->layout;
	co.tmpl = cfg->tmpl;
	co.arch = cfg->arch;
	co.versions = cfg->versions;
	co.toolchains = cfg->toolchains;
	if (parse_seconds("refresh", cfg->refresh, &co.refresh_s) ||
	    parse_seconds("negative_ttl", cfg->negative_ttl,
			  &co.negative_ttl_s) ||
	    parse_seconds("release_after", cfg->release_after,
			  &co.release_after_s))
		return NULL;
	if (!cfg->module_root)
		root = realpath(mountpoint, NULL);
	co.module_root = cfg->module_root ? cfg->module_root : root;
	if (!co.module_root) {
		log_err("cannot resolve %s: %s", mountpoint, strerror(errno));
		return NULL;
	}
	co.bc_base = cfg->bc_base;
	co.bc_templates = cfg->bc_templates;
	co.norelocate = cfg->norelocate;
	co.relocate = cfg->relocate;
	co.oc.index = cfg->index;
	co.oc.cache_dir = cfg->cache_dir;
	co.oc.trust = trust;
	co.oc.allow_rollback = cfg->allow_rollback;
	fill_fetch_opts(cfg, &co.oc.fo);
	co.ao = *ao;
	cat = catalog_new(&co, err, sizeof(err));
	free(root);
	co.module_root = NULL; /* freed: not for the caller */
	*out = co;
	if (!cat) {
		log_err("%s", err);
		return NULL;
	}
	rc = catalog_refresh(cat);
	catalog_get_stats(cat, &st);
	if (rc < 0)
		log_warn("cannot list %s now (%s): mounting; names are probed "
			 "as they are looked up",
			 util_url_redact(cfg->source, shown, sizeof(shown)),
			 strerror(-rc));
	if (!cfg->quiet)
		log_info("%s: %" PRIu64 " artifacts in %.2f s (%" PRIu64
			 " listing, %" PRIu64 " probe requests)",
			 util_url_redact(cfg->source, shown, sizeof(shown)),
			 st.known, now_s() - t0, st.list_requests,
			 st.probe_requests);
	return cat;
}

/* Mounts se (made by check_opts) on the mount point and serves it until
 * unmounted, then destroys it (its destroy handler stops fs's threads,
 * before fs_fini). 0, or 1 after logging. */
static int run_session(struct fuse_session *se, struct fuse_cmdline_opts *opts,
		       struct fs *fs)
{
	struct fuse_loop_config *lc = NULL;
	int rc = 1;

	fs->se = se;
	if (fuse_set_signal_handlers(se))
		goto out;
	if (fuse_session_mount(se, opts->mountpoint)) {
		log_err("cannot mount on %s", opts->mountpoint);
		goto out_signals;
	}
	if (fs_session_channel(fs, se))
		log_warn("cannot grant the kernel parallel lookups: lookups "
			 "in one directory wait for each other");
	if (fuse_daemonize(opts->foreground))
		goto out_unmount;
	if (!opts->foreground)
		log_to_syslog();
	if (opts->singlethread) {
		rc = fuse_session_loop(se);
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc)
			goto out_unmount;
		fuse_loop_cfg_set_clone_fd(lc, opts->clone_fd);
		fuse_loop_cfg_set_max_threads(lc, opts->max_threads);
		/* UINT_MAX: libfuse's own default (it warns about the value) */
		if (opts->max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lc,
						       opts->max_idle_threads);
		rc = fuse_session_loop_mt(se, lc);
		fuse_loop_cfg_destroy(lc);
	}
	rc = rc ? 1 : 0;
	/* Nothing may write to the channel once unmount closes it (a reply
	 * or notification would go to whatever reuses the descriptor): the
	 * threads that reply outside the loop stop first. The destroy
	 * handler stops them too; both are idempotent. */
	fs_reaper_stop(fs);
	fs_readers_stop(fs);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out:
	fuse_session_destroy(se);
	fs->se = NULL;
	return rc;
}

/* Does an argument name option opt ("name=") anywhere in it? */
static bool args_name(const struct fuse_args *args, const char *opt)
{
	for (int i = 1; i < args->argc; i++)
		if (strstr(args->argv[i], opt))
			return true;
	return false;
}

/*
 * Buffers come and go all the time from many threads: two arenas keep
 * glibc from holding freed memory in one arena per thread. And malloc's
 * dynamic mmap threshold rises to the size of any mapped block freed,
 * after which the decoders' 256 KiB buffers and the windows come from the
 * heap and fragment it: reading every file of the 1.39 GB fixture once
 * (cache_mem=64M) peaked at 118 MiB, 33 MiB of it heap and one arena. A
 * fixed threshold keeps them mapped and given back whole (peak 96.5 MiB).
 * (It once halved streaming speed, when chunks and blocks were malloc'd:
 * they now come from pools of mapped pages of their own, and a decoder's
 * state and buffer from a pool, so few buffers are mapped anew.) The
 * MALLOC_*_ environment variables still win.
 */
static void malloc_setup(void)
{
	mallopt(M_ARENA_MAX, 2);
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (!getenv("MALLOC_TRIM_THRESHOLD_"))
		mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

bool is_catalog(const char *source)
{
	size_t n = strlen(source);

	return n && source[n - 1] == '/';
}

static void cfg_free(struct cfg *cfg)
{
	char **strs[] = {&cfg->source,
			 &cfg->source_opt,
			 &cfg->signature,
			 &cfg->oom_score_adj,
			 &cfg->cache_mem,
			 &cfg->span,
			 &cfg->index,
			 &cfg->cache_dir,
			 &cfg->cache_size,
			 &cfg->readahead,
			 &cfg->block,
			 &cfg->window_mem,
			 &cfg->cafile,
			 &cfg->layout,
			 &cfg->tmpl,
			 &cfg->arch,
			 &cfg->s3_endpoint,
			 &cfg->versions,
			 &cfg->toolchains,
			 &cfg->refresh,
			 &cfg->negative_ttl,
			 &cfg->release_after,
			 &cfg->module_root,
			 &cfg->bc_base,
			 &cfg->bc_templates,
			 &cfg->relocate,
			 &cfg->trust,
			 &cfg->keyring,
			 &cfg->verify,
			 &cfg->config,
			 &cfg->mirrors,
			 &cfg->proxies,
			 &cfg->host_reset_after,
			 &cfg->proxy_reset_after};

	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* The OOM killer's score for the daemon: every running Slurm binary is
 * served by it, so as root it is lowered (default -900, not -1000: a
 * runaway daemon may still be killed). Failures are only logged. */
static int parse_oom_score_adj(const struct cfg *cfg, int *out)
{
	char *end;
	long v;

	*out = geteuid() == 0 ? -900 : 0;
	if (!cfg->oom_score_adj)
		return 0;
	errno = 0;
	v = strtol(cfg->oom_score_adj, &end, 10);
	if (errno || end == cfg->oom_score_adj || *end || v < -1000 ||
	    v > 1000) {
		log_err("bad oom_score_adj value '%s' (-1000 to 1000)",
			cfg->oom_score_adj);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

static void set_oom_score_adj(const struct cfg *cfg, int adj)
{
	char val[16];
	int fd, n, ok;

	if (!cfg->oom_score_adj && geteuid() != 0)
		return; /* lowering needs CAP_SYS_RESOURCE */
	n = snprintf(val, sizeof(val), "%d\n", adj);
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	ok = fd >= 0 && write(fd, val, (size_t)n) == n;
	if (!ok && cfg->oom_score_adj)
		log_warn("cannot set oom_score_adj to %d: %s", adj,
			 strerror(errno));
	else if (!ok) /* the default: a container may lack the capability */
		log_info("cannot set oom_score_adj to %d: %s", adj,
			 strerror(errno));
	else
		log_debug("oom_score_adj %d", adj);
	if (fd >= 0)
		close(fd);
}

/* Everything the options say that can be checked without the network,
 * before any request: a bad value is named in one line. The session is
 * made here too, so that libfuse refuses an unknown option ("unknown
 * option(s): `-o NAME'") before an artifact is opened. NULL after
 * logging. */
static struct fuse_session *check_opts(const struct cfg *cfg,
				       struct fuse_args *args,
				       struct archive_opts *ao, struct fs *fs)
{
	unsigned s;
	int adj;

	if (parse_sizes(cfg, ao) || parse_oom_score_adj(cfg, &adj) ||
	    parse_seconds("refresh", cfg->refresh, &s) ||
	    parse_seconds("negative_ttl", cfg->negative_ttl, &s) ||
	    parse_seconds("release_after", cfg->release_after, &s))
		return NULL;
	if (cfg->verify && strcmp(cfg->verify, "off") &&
	    strcmp(cfg->verify, "require")) {
		log_err("bad verify value '%s' (require or off)", cfg->verify);
		return NULL;
	}
	if (fs_add_mount_opts(args, cfg->source))
		return NULL;
	set_oom_score_adj(cfg, adj);
	return fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs);
}

/* Seconds between looks for idle artifacts: a few per release_after
 * (0: nothing is released; the reaper then only watches latest). */
static unsigned reap_period(unsigned release_after_s)
{
	unsigned half = release_after_s / 2;

	if (!release_after_s)
		return 0;
	return half < 1 ? 1 : half > 5 ? 5 : half;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_cmdline_opts opts = {0};
	struct cfg cfg = {0};
	struct archive_opts ao;
	struct opened o = {0};
	struct catalog *cat = NULL;
	struct catalog_opts co;
	struct trust *trust = NULL;
	struct fuse_session *se = NULL;
	struct fs fs = {0};
	struct disk *disk = NULL;
	bool user_threads, user_idle;
	int rc = 1;

	malloc_setup();
	if (fs_build_args(argc, argv, &args) ||
	    fuse_opt_parse(&args, &cfg, cfg_opts, cfg_proc))
		goto out_args;
	if (cfg.show_help) {
		fs_usage(argv[0]);
		rc = 0;
		goto out_args;
	}
	if (cfg.show_version) {
		printf("sffs %s (libfuse %s)\n", SFFS_VERSION,
		       fuse_pkgversion());
		rc = 0;
		goto out_args;
	}
	if (cfg.source_opt && !cfg.source) {
		cfg.source = cfg.source_opt; /* from the config file */
		cfg.source_opt = NULL;
	}
	user_threads = args_name(&args, "max_threads=");
	user_idle = args_name(&args, "max_idle_threads=");
	if (fuse_parse_cmdline(&args, &opts))
		goto out_args;
	if (!cfg.source || !opts.mountpoint) {
		fprintf(stderr,
			"usage: %s [options] SOURCE MOUNTPOINT "
			"(--help for more)\n",
			argv[0]);
		goto out_opts;
	}
	/* Lookups wait for attaches (up to -o timeout) in FUSE workers: with
	 * libfuse's 10, a dozen of them would starve every other artifact's
	 * requests. Threads are made only as requests need them. */
	if (!user_threads && is_catalog(cfg.source) &&
	    opts.max_threads < FS_CATALOG_THREADS)
		opts.max_threads = FS_CATALOG_THREADS;
	/* libfuse 3.14 keeps every worker a burst made for the mount's life
	 * (max_idle_threads -1): a daemon up for months would hold its boot
	 * storm's threads. Reads are handed to sffs's own readers, so a
	 * worker's request is short and making one again is cheap. */
	if (!user_idle)
		opts.max_idle_threads = FS_IDLE_THREADS;
	if (cfg.verbose || opts.debug)
		log_set_level(LOG_LVL_DEBUG);
	archive_opts_default(&ao);
	se = check_opts(&cfg, &args, &ao, &fs);
	if (!se)
		goto out_opts;
	if (fs_open_disk(&cfg, &disk))
		goto out_session;
	ao.blocks.disk = disk;
	if (fetch_global_init())
		goto out_session;
	if (fs_setup_route(&cfg))
		goto out_fetch;
	if (fs_build_trust(&cfg, &trust))
		goto out_fetch;
	if (((cfg.layout && !strcmp(cfg.layout, "buildcache")) ||
	     cfg.bc_base) &&
	    !trust && !(cfg.verify && !strcmp(cfg.verify, "off"))) {
		log_err("layout=buildcache lists only packages whose manifests "
			"verify: give -o trust=FPR (keys are taken from the "
			"cache) or -o keyring=FILE, or -o verify=off");
		goto out_fetch;
	}
	if (is_catalog(cfg.source)) {
		cat = open_catalog(&cfg, &ao, trust, opts.mountpoint, &co);
		if (!cat)
			goto out_fetch;
		fs_init_catalog(&fs, cat, 86400.0);
		fs.reap_period_s = reap_period(co.release_after_s);
		/* the kernel's negative entries expire with the catalog's */
		fs.neg_timeout = co.negative_ttl_s < 5 ? co.negative_ttl_s : 5;
	} else {
		if (open_artifact(&cfg, &ao, trust, &o) ||
		    relocate_artifact(&cfg, o.ar, opts.mountpoint))
			goto out_fetch;
		bc_warn_writable(archive_tree(o.ar), archive_root(o.ar),
				 opts.mountpoint);
		fs_init(&fs, o.ar, 86400.0);
	}
	rc = run_session(se, &opts, &fs);
	se = NULL; /* destroyed */
	fs_fini(&fs);
out_fetch:
	catalog_free(cat);
	artifact_close(&o);
	trust_free(trust);
	fetch_global_cleanup();
out_session:
	disk_free(disk); /* after every store that used it */
	if (se)		 /* never started: no handler runs */
		fuse_session_destroy(se);
out_opts:
	free(opts.mountpoint);
out_args:
	cfg_free(&cfg);
	fuse_opt_free_args(&args);
	return rc;
}
