/* SPDX-License-Identifier: MIT */
/*
 * sffs-index - build the published index (.sfidx) of an artifact.
 *
 *   sffs-index [--span SIZE] [--block SIZE] [--identity STR]
 *              [--name NAME] [--version V] [--toolchain T]
 *              [--published SECONDS] [--sign-with KEY] ARTIFACT [-o OUT]
 *   sffs-index --header INDEX > HEADER
 *   sffs-index --repack [--to gzip|zstd] [--level N] IN OUT
 *
 * ARTIFACT is a local path or URL (as sffs takes it). One streaming pass,
 * bounded memory, the same bytes for the same artifact every time (given
 * the same --published, or SOURCE_DATE_EPOCH). OUT
 * defaults to the artifact's file name plus ".sfidx" in the current
 * directory. This is what the factory runs after building each tarball;
 * sffs itself writes the very same file into its cache directory.
 *
 * An index is signed over its header (which holds the digests of every
 * other byte of it and of the artifact): --sign-with KEY runs
 * `gpg --detach-sign --armor --local-user KEY` on the header and writes
 * OUT.asc; --header prints the header for signing with other tools.
 * The header also binds the index to a name (index.h, minor 3.1): the
 * artifact's file name (--name, default the basename of ARTIFACT without
 * its query), --version and --toolchain as a catalog names it (empty:
 * not checked) and the publication time (--published, default
 * SOURCE_DATE_EPOCH if set, else now), which a daemon compares with what
 * it asked for and with the newest it saw.
 *
 * --repack rewrites a tarball (tar, tar.gz, tar.zst) as a .tar.gz or
 * .tar.zst in which every member starts a new gzip member or zstd frame
 * (repack.h): still what tar -xzf / tar --zstd -xf reads, and its index
 * needs no windows and has no span much over 1 MiB. The output codec is
 * the input's (gzip for a plain tar) unless --to says otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sffs/archive.h"
#include "sffs/fetch.h"
#include "sffs/index.h"
#include "sffs/log.h"
#include "sffs/repack.h"
#include "sffs/util.h"

static void usage(FILE *to)
{
	fprintf(to, "usage: sffs-index [--span SIZE] [--block SIZE] "
		    "[--identity STR] ARTIFACT [-o OUT]\n"
		    "  --span SIZE      seek-point spacing (default 1M)\n"
		    "  --block SIZE     verified block size (default 128K; "
		    "4K to 16M)\n"
		    "  --identity STR   record this ETag/Last-Modified\n"
		    "  --name NAME      the artifact's name the signature "
		    "binds (default:\n"
		    "                   ARTIFACT's file name)\n"
		    "  --version V      its catalog version (default: none)\n"
		    "  --toolchain T    its catalog toolchain (default: none)\n"
		    "  --published S    publication time, seconds since the "
		    "epoch (default:\n"
		    "                   SOURCE_DATE_EPOCH, else now)\n"
		    "  --sign-with KEY  sign the index header with gpg's KEY "
		    "into OUT.asc\n"
		    "usage: sffs-index --header INDEX   (its header, to sign "
		    "it with other tools)\n"
		    "usage: sffs-index --repack [--to gzip|zstd] [--level N] "
		    "IN OUT\n"
		    "  --to CODEC       output codec (default: the input's; "
		    "gzip for a plain tar)\n"
		    "  --level N        output level (default gzip 6, zstd 6)\n"
		    "  --quiet          no progress line\n");
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	(void)total;
	progress_update(arg, done);
}

static int build(const char *src, const char *out, struct archive_opts *ao,
		 const char *identity, const struct index_binding *bind,
		 int quiet)
{
	struct fetch *f;
	struct archive *ar;
	struct progress *pg;
	struct stat st;
	char err[1024], a[32], b[32];
	int rc;

	f = fetch_open(src, NULL, err, sizeof(err));
	if (!f) {
		log_err("%s", err);
		return 1;
	}
	pg = quiet ? NULL : progress_new("indexing", fetch_size(f), false);
	ao->progress = on_progress;
	ao->progress_arg = pg;
	ar = archive_open(f, ao, err, sizeof(err));
	progress_finish(pg);
	if (!ar) {
		log_err("%s", err);
		fetch_free(f);
		return 1;
	}
	rc = archive_write_index_bound(ar, out, identity, bind);
	if (rc)
		log_err("writing %s: %s", out, strerror(-rc));
	else if (!quiet && !stat(out, &st))
		log_info("%s: %s index for %s of %s (%.3f%%)", out,
			 util_format_size((uint64_t)st.st_size, a, sizeof(a)),
			 seek_codec_name(archive_seek_index(ar)->codec),
			 util_format_size(fetch_size(f), b, sizeof(b)),
			 100.0 * (double)st.st_size / (double)fetch_size(f));
	archive_free(ar);
	fetch_free(f);
	return rc ? 1 : 0;
}

/* The header of the index at path: its first hlen bytes into buf. */
static int read_header(const char *path, unsigned char *buf, size_t *len)
{
	struct index_header h;
	FILE *fp = fopen(path, "rb");
	size_t n;

	*len = 0;
	if (!fp) {
		int e = errno ? errno : EIO;

		log_err("%s: %s", path, strerror(e));
		return -e;
	}
	n = fread(buf, 1, INDEX_HEADER_MAX, fp);
	fclose(fp);
	if (index_parse_header(buf, n, &h)) {
		log_err("%s: not an sffs index (or a corrupt header)", path);
		return -EINVAL;
	}
	*len = h.hlen;
	return 0;
}

static int print_header(const char *path)
{
	unsigned char buf[INDEX_HEADER_MAX];
	size_t len = 0;

	if (read_header(path, buf, &len))
		return 1;
	if (fwrite(buf, 1, len, stdout) != len || fflush(stdout)) {
		log_err("writing the header: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/* gpg --detach-sign --armor over the index header, into OUT.asc. */
static int sign_header(const char *out, const char *key)
{
	unsigned char buf[INDEX_HEADER_MAX];
	char *asc = NULL;
	size_t len = 0;
	int fds[2], status = 0;
	pid_t pid;

	if (read_header(out, buf, &len) || asprintf(&asc, "%s.asc", out) < 0)
		return 1;
	if (pipe(fds)) {
		free(asc);
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[0]);
		close(fds[1]);
		execlp("gpg", "gpg", "--batch", "--yes", "--armor",
		       "--detach-sign", "--local-user", key, "--output", asc,
		       (char *)NULL);
		perror("gpg");
		_exit(127);
	}
	close(fds[0]);
	if (pid < 0 || write(fds[1], buf, len) != (ssize_t)len)
		status = -1;
	close(fds[1]);
	if (pid > 0 && waitpid(pid, &status, 0) < 0)
		status = -1;
	if (status)
		log_err("gpg could not sign %s with key %s", out, key);
	else
		log_info("%s: the index header signed by %s", asc, key);
	free(asc);
	return status ? 1 : 0;
}

/* Warns when OUT's name says another codec than the one written. */
static void check_suffix(const char *out, enum seek_codec c)
{
	static const struct {
		const char *suffix;
		enum seek_codec codec;
	} names[] = {{".gz", SEEK_GZIP},
		     {".tgz", SEEK_GZIP},
		     {".zst", SEEK_ZSTD},
		     {".tzst", SEEK_ZSTD}};
	size_t i, len = strlen(out);

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t n = strlen(names[i].suffix);

		if (len >= n && !strcmp(out + len - n, names[i].suffix) &&
		    names[i].codec != c)
			log_warn("%s holds %s data despite its name (--to)",
				 out, seek_codec_name(c));
	}
}

static int repack(const char *in, const char *out, const struct repack_opts *o)
{
	struct repack_stats st;
	struct fetch *f;
	char err[1024];
	int rc;

	f = fetch_open(in, NULL, err, sizeof(err));
	if (!f) {
		log_err("%s", err);
		return 1;
	}
	rc = repack_tarball(f, out, o, &st, err, sizeof(err));
	if (rc) {
		log_err("repacking %s: %s", in, err);
	} else {
		log_info("%s: %" PRIu64 " bytes in %" PRIu64 " %s, level %d "
			 "(input %" PRIu64
			 " bytes, %+.2f%%, %s; tar stream %" PRIu64 " bytes)",
			 out, st.out_bytes, st.members,
			 repack_piece_name(st.out_codec), st.level, st.in_bytes,
			 100.0 * ((double)st.out_bytes - (double)st.in_bytes) /
			     (double)st.in_bytes,
			 seek_codec_name(st.in_codec), st.tar_bytes);
		check_suffix(out, st.out_codec);
	}
	fetch_free(f);
	return rc ? 1 : 0;
}

struct args {
	struct archive_opts ao;
	struct index_binding bind;
	const char *published; /* NULL: SOURCE_DATE_EPOCH, else now */
	const char *identity;
	const char *out;
	const char *sign_with;
	int header;
	struct repack_opts ro;
	int quiet, repack;
};

/* --level ('l') and --to ('t'): 0, or -EINVAL after saying why. The
 * level's range depends on the codec: repack_tarball checks it. */
static int parse_repack_opt(int c, const char *arg, struct repack_opts *ro)
{
	char *end;
	long lvl;

	if (c == 't' && !strcmp(arg, "gzip")) {
		ro->to = SEEK_GZIP;
	} else if (c == 't' && !strcmp(arg, "zstd")) {
		ro->to = SEEK_ZSTD;
	} else if (c == 't') {
		log_err("bad --to '%s' (gzip or zstd)", arg);
		return -EINVAL;
	} else {
		lvl = strtol(arg, &end, 10);
		if (!*arg || *end || lvl < 1 || lvl > 99) {
			log_err("bad --level '%s'", arg);
			return -EINVAL;
		}
		ro->level = (int)lvl;
	}
	return 0;
}

static int parse_block(const char *arg, struct archive_opts *ao)
{
	uint64_t v;

	if (util_parse_size(arg, &v) || v < BLOCKS_MIN_SIZE ||
	    v > BLOCKS_MAX_SIZE) {
		log_err("bad --block '%s' (4K to 16M)", arg);
		return -EINVAL;
	}
	ao->block_size = (uint32_t)v;
	return 0;
}

/* --name ('N'), --version ('v'), --toolchain ('T'): 0, or -EINVAL
 * after saying why. */
static int parse_bind_opt(int c, const char *arg, struct index_binding *b)
{
	char *to = c == 'N' ? b->name : c == 'v' ? b->version : b->toolchain;
	size_t max = c == 'N' ? INDEX_MAX_NAME : INDEX_MAX_TAG;

	if (strlen(arg) > max || (c == 'N' && !*arg)) {
		log_err("bad --%s '%s' (1 to %zu bytes)",
			c == 'N'   ? "name"
			: c == 'v' ? "version"
				   : "toolchain",
			arg, max);
		return -EINVAL;
	}
	snprintf(to, max + 1, "%s", arg);
	return 0;
}

/* The publication time: --published, else SOURCE_DATE_EPOCH (so that a
 * reproducible build stays reproducible), else now. 0 or -EINVAL. */
static int pick_published(struct args *a)
{
	const char *v =
	    a->published ? a->published : getenv("SOURCE_DATE_EPOCH");
	unsigned long long t;
	char *end;

	if (!v || !*v) {
		a->bind.published = (uint64_t)time(NULL);
		return 0;
	}
	errno = 0;
	t = strtoull(v, &end, 10);
	if (errno || *end || *v == '-') {
		log_err("bad %s '%s' (seconds since the epoch)",
			a->published ? "--published" : "SOURCE_DATE_EPOCH", v);
		return -EINVAL;
	}
	a->bind.published = t;
	return 0;
}

/* 0, or 2 after printing why the command line is wrong. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
	    {"span", required_argument, NULL, 's'},
	    {"block", required_argument, NULL, 'b'},
	    {"identity", required_argument, NULL, 'i'},
	    {"output", required_argument, NULL, 'o'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"repack", no_argument, NULL, 'r'},
	    {"level", required_argument, NULL, 'l'},
	    {"to", required_argument, NULL, 't'},
	    {"sign-with", required_argument, NULL, 'S'},
	    {"name", required_argument, NULL, 'N'},
	    {"version", required_argument, NULL, 'v'},
	    {"toolchain", required_argument, NULL, 'T'},
	    {"published", required_argument, NULL, 'P'},
	    {"header", no_argument, NULL, 'H'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (util_parse_size(optarg, &a->ao.spacing) ||
			    a->ao.spacing < 65536) {
				log_err("bad --span '%s' (at least 64K)",
					optarg);
				return 2;
			}
			break;
		case 'b':
			if (parse_block(optarg, &a->ao))
				return 2;
			break;
		case 'i':
			a->identity = optarg;
			break;
		case 'o':
			a->out = optarg;
			break;
		case 'q':
			a->quiet = 1;
			break;
		case 'r':
			a->repack = 1;
			break;
		case 'S':
			a->sign_with = optarg;
			break;
		case 'N':
		case 'v':
		case 'T':
			if (parse_bind_opt(c, optarg, &a->bind))
				return 2;
			break;
		case 'P':
			a->published = optarg;
			break;
		case 'H':
			a->header = 1;
			break;
		case 'l':
		case 't':
			if (parse_repack_opt(c, optarg, &a->ro))
				return 2;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 + a->repack != argc) {
		usage(stderr);
		return 2;
	}
	if (!a->bind.name[0])
		index_url_basename(argv[optind], a->bind.name,
				   sizeof(a->bind.name));
	return pick_published(a) ? 2 : 0;
}

int main(int argc, char **argv)
{
	struct args a = {.ro = {.to = SEEK_NONE}};
	char *out = NULL, *tmp = NULL;
	int rc;

	archive_opts_default(&a.ao);
	a.ao.cache_mem = 0;
	a.ao.blocks.seed_max = 0; /* it never reads the blocks back */
	rc = parse_args(argc, argv, &a);
	if (rc)
		return rc;
	if (fetch_global_init())
		return 1;
	if (a.header) {
		rc = print_header(argv[optind]);
	} else if (a.repack) {
		rc = repack(argv[optind], argv[optind + 1], &a.ro);
	} else {
		tmp = strdup(argv[optind]);
		rc = 1;
		out = a.out ? strdup(a.out) : NULL;
		if (!a.out && tmp &&
		    asprintf(&out, "%s.sfidx", basename(tmp)) < 0)
			out = NULL;
		if (out)
			rc = build(argv[optind], out, &a.ao, a.identity,
				   &a.bind, a.quiet);
		if (!rc && a.sign_with)
			rc = sign_header(out, a.sign_with);
	}
	fetch_global_cleanup();
	free(out);
	free(tmp);
	return rc;
}
