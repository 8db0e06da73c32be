/* SPDX-License-Identifier: MIT */
/*
 * cli.c - the command line around the options: the help text, the config
 * file (-o config=FILE: its options go before the command line's, so the
 * command line wins) and the mount options sffs always adds.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sffs/log.h"
#include "sffs/util.h"
#include "fs.h"

void fs_usage(const char *prog)
{
	printf("usage: %s [options] SOURCE MOUNTPOINT\n"
	       "       %s [options] BASE/ MOUNTPOINT\n\n"
	       "Mounts a remote tar, tar.gz or tar.zst read-only, fetching only "
	       "the byte\nranges that are read. A BASE ending in '/' mounts "
	       "every artifact under it\nas MOUNTPOINT/<version>/<toolchain>/, "
	       "with generated modulefiles in\nMOUNTPOINT/modules/slurm/ and "
	       "MOUNTPOINT/latest.\n\n"
	       "SOURCE: http(s)://host/path, s3://bucket/key, file:///path or "
	       "a local path\n\n"
	       "sffs options:\n"
	       "    -o cache_mem=SIZE      decoded bytes kept in memory "
	       "(default 64M)\n"
	       "    -o readahead=SIZE      a sequential reader's bytes "
	       "fetched ahead (default 8M; 0: off)\n"
	       "    -o max_fetches=N       parallel range requests "
	       "(default 4)\n"
	       "    -o timeout=SECONDS     a read's deadline, then EIO "
	       "(default 60)\n"
	       "    -o window_mem=SIZE     seek-point windows kept "
	       "(default 4M)\n"
	       "    -o block=SIZE          verified block size when "
	       "indexing (default 128K)\n"
	       "    -o span=SIZE           seek-point spacing (default 1M)\n"
	       "    -o index=URL|PATH      published index (default "
	       "SOURCE.sfidx; none: skip)\n"
	       "    -o signature=URL|PATH  SOURCE's detached signature "
	       "(default SOURCE.asc)\n"
	       "    -o source=URL          SOURCE, in a config file (0600) so "
	       "that\n"
	       "                           it is not on the command line\n"
	       "    -o oom_score_adj=N     the daemon's, -1000..1000 (default "
	       "-900 as root)\n"
	       "    -o cache_dir=DIR       where built indexes are kept "
	       "(default\n"
	       "                           /var/cache/sffs, or ~/.cache/sffs;"
	       " none: off)\n"
	       "    -o cache_size=SIZE     verified blocks kept on disk in "
	       "cache_dir/blocks\n"
	       "                           (default 0: none)\n"
	       "    -o retries=N           retries per request (default 5)\n"
	       "    -o connect_timeout=S   seconds (default 10)\n"
	       "    -o insecure            do not verify TLS certificates\n"
	       "    -o mirrors=URL[;URL]   other servers of the same paths "
	       "(a ring; failover)\n"
	       "    -o proxies=A|B;C;DIRECT proxy groups: | random within, ; "
	       "next group\n"
	       "    -o host_reset_after=S  back to SOURCE's server after S "
	       "(default 1800)\n"
	       "    -o proxy_reset_after=S back to the first proxy group "
	       "(default 300)\n"
	       "    -o cafile=FILE         CA certificates (PEM) to verify TLS "
	       "with (default:\n"
	       "                           CURL_CA_BUNDLE, SSL_CERT_FILE/_DIR, "
	       "or the system's)\n"
	       "    -o s3_endpoint=URL     s3:// goes to URL/bucket/key "
	       "(default: AWS)\n"
	       "    -o config=FILE         options from FILE, one per line "
	       "(command line wins)\n"
	       "    -o trust=FPR[:FPR]     OpenPGP keys (40-hex fingerprints) "
	       "whose signatures\n"
	       "                           are trusted; then nothing "
	       "unverified is served\n"
	       "    -o keyring=FILE|URL    their public keys (a local FILE's "
	       "keys are trusted\n"
	       "                           without trust=; a URL's only "
	       "through trust=)\n"
	       "    -o verify=require|off  refuse unverified artifacts "
	       "(default with trust)\n"
	       "                           or serve them anyway (testing)\n"
	       "    -o allow_rollback      serve a signed build older than "
	       "the newest seen\n"
	       "                           under its name (default: refused)\n"
	       "    -o allow_insecure      with trust: accept http:// and "
	       "-o insecure (refused\n"
	       "                           otherwise; signatures are still "
	       "checked)\n"
	       "    -o verbose / -o quiet  more / fewer log messages\n"
	       "catalog options (BASE/):\n"
	       "    -o layout=seed|factory URL layout (default seed: "
	       "{version}/{toolchain}/...)\n"
	       "    -o layout=buildcache   BASE/ is a Spack buildcache: "
	       "MOUNTPOINT/<package>/\n"
	       "                           is each package's prefix "
	       "(v3 or v2, signed manifests)\n"
	       "    -o template=STRING     own layout with {version}, "
	       "{toolchain}, {arch}\n"
	       "    -o arch=NAME           {arch} (default this node's: "
	       "amd64, arm64)\n"
	       "    -o versions=A:B        versions to probe (a base that is "
	       "not s3://)\n"
	       "    -o toolchains=X:Y      toolchains to probe\n"
	       "    -o refresh=SECONDS     listings trusted this long "
	       "(default 300)\n"
	       "    -o negative_ttl=SECONDS a missing name stays missing "
	       "(default 30)\n"
	       "    -o release_after=SECONDS unused artifacts released "
	       "(default 600; 0 never)\n"
	       "    -o module_root=PATH    the path modulefiles name "
	       "(default MOUNTPOINT)\n"
	       "    -o buildcache_base=URL each artifact's Spack buildcaches "
	       "under URL, as\n"
	       "                           MOUNTPOINT/<version>/<toolchain>/"
	       "buildcache/<package>/\n"
	       "    -o buildcache=T[:T]    their templates (default "
	       "{toolchain}/slurm/deps/buildcache/\n"
	       "                           :{toolchain}/slurm/{version}/"
	       "buildcache/\n"
	       "                           :{toolchain}/spack/)\n"
	       "    -o norelocate          serve buildcache packages as in "
	       "their blobs (default:\n"
	       "                           relocated to where the mount "
	       "shows them, as spack\n"
	       "                           install would)\n"
	       "    -o relocate=OLD[=REL][:...]  relocate the artifact's ELF "
	       "files from the\n"
	       "                           build tree OLD to the mounted "
	       "artifact (or its REL)\n"
	       "    -f                     stay in the foreground\n"
	       "    -d                     FUSE debug output (implies -f)\n"
	       "    -s                     single-threaded\n"
	       "    -o allow_other         let other users see the mount\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT (man sffs for more)\n",
	       prog, prog);
}

/* Where -o config=FILE is in argv (as "-o a,config=F" or "-oconfig=F"),
 * or NULL. Escaped commas are not looked at: a config path has none. */
static char *find_config(int argc, char *argv[])
{
	for (int i = 1; i < argc; i++) {
		const char *o = NULL, *p;

		if (!strcmp(argv[i], "-o") && i + 1 < argc)
			o = argv[++i];
		else if (!strncmp(argv[i], "-o", 2))
			o = argv[i] + 2;
		for (p = o; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1
							: NULL) {
			if (!strncmp(p, "config=", 7))
				return strndup(p + 7, strcspn(p + 7, ","));
		}
	}
	return NULL;
}

/* Neither group nor others may read the file (nor write it). */
static bool config_is_private(FILE *fp)
{
	struct stat st;

	return fstat(fileno(fp), &st) == 0 && !(st.st_mode & 077);
}

/* Whether url has something util_url_redact would hide. */
static bool url_has_secret(const char *url)
{
	char shown[UTIL_URL_SHOWN_MAX];

	return strcmp(util_url_redact(url, shown, sizeof(shown)), url) != 0;
}

/* The config file's options, one per line, as "-o" arguments put before
 * the command line's (which so win). 0, or -errno after logging. */
static int read_config(const char *path, struct fuse_args *out)
{
	char line[4096], *p, *end, *esc;
	unsigned lineno = 0;
	FILE *fp = fopen(path, "re");
	bool private_cfg;
	int rc = 0;

	if (!fp) {
		log_err("config %s: %s", path, strerror(errno));
		return -errno;
	}
	private_cfg = config_is_private(fp);
	while (!rc && fgets(line, sizeof(line), fp)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(fp)) {
			log_err("config %s:%u: line too long", path, lineno);
			rc = -EINVAL;
			break;
		}
		*strchrnul(line, '#') = '\0';
		for (p = line; *p == ' ' || *p == '\t'; p++)
			;
		end = p + strlen(p);
		while (end > p && strchr(" \t\r\n", end[-1]))
			*--end = '\0';
		if (!*p)
			continue;
		if (!strncmp(p, "config=", 7)) {
			log_err("config %s:%u: config= inside a config file",
				path, lineno);
			rc = -EINVAL;
			break;
		}
		if (!private_cfg && !strncmp(p, "source=", 7) &&
		    url_has_secret(p + 7)) {
			log_err("config %s:%u: source= holds a URL's secret "
				"but the file is readable by others (chmod "
				"600 it)",
				path, lineno);
			rc = -EPERM;
			break;
		}
		esc = NULL;
		if (fuse_opt_add_opt_escaped(&esc, p) ||
		    fuse_opt_add_arg(out, "-o") || fuse_opt_add_arg(out, esc))
			rc = -ENOMEM;
		free(esc);
	}
	if (!rc && ferror(fp))
		rc = -EIO;
	fclose(fp);
	return rc;
}

/* argv with the config file's options (if any) first. */
int fs_build_args(int argc, char *argv[], struct fuse_args *args)
{
	char *config = find_config(argc, argv);
	int rc = fuse_opt_add_arg(args, argv[0]) ? -ENOMEM : 0;

	if (!rc && config)
		rc = read_config(config, args);
	for (int i = 1; !rc && i < argc; i++)
		if (fuse_opt_add_arg(args, argv[i]))
			rc = -ENOMEM;
	free(config);
	return rc;
}

/* Read-only, no setuid, no devices, kernel permission checks - always. */
int fs_add_mount_opts(struct fuse_args *args, const char *source)
{
	char *fsname = NULL, *opt, shown[UTIL_URL_SHOWN_MAX];
	int rc = -ENOMEM;

	if (fuse_opt_add_arg(args, "-oro,nosuid,nodev,default_permissions,"
				   "subtype=sffs"))
		return rc;
	/* fsname is in /proc/mounts for every user: never a URL's secret */
	if (asprintf(&opt, "fsname=%s",
		     util_url_redact(source, shown, sizeof(shown))) < 0)
		return rc;
	/* A URL may hold commas; escape them for the option parser. */
	if (!fuse_opt_add_opt_escaped(&fsname, opt) &&
	    !fuse_opt_add_arg(args, "-o") && !fuse_opt_add_arg(args, fsname))
		rc = 0;
	free(opt);
	free(fsname);
	return rc;
}

