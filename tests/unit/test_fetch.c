/* SPDX-License-Identifier: MIT */
/*
 * test_fetch.c - fetch/ against a real nginx and a fault-injecting server.
 *
 * Starts nginx (serving a random 5 MiB file) and tests/lib/faultserver.py
 * (found through $SFFS_SRC) on free loopback ports, in a scratch directory
 * under $SFFS_TEST_TMP (or /tmp). Both are killed and the directory removed
 * at exit; they also die with us (PR_SET_PDEATHSIG) if we crash.
 */
#include "check.h"

#include "../../fetch/fetch_i.h"
#include "sffs/fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DATA_SIZE (5u << 20)
#define FAULT_SIZE (1u << 20)
#define NTHREADS 8
#define RANGES_PER_THREAD 60

struct env {
	char tmp[PATH_MAX];
	pid_t nginx, fault;
	int nginx_port, tls_port, fault_port;
	unsigned char *data;  /* www/data.bin */
	unsigned char *fdata; /* what faultserver serves */
	uint64_t seed;
};

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static unsigned char *random_bytes(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n);

	for (size_t i = 0; p && i < n; i++)
		p[i] = (unsigned char)(rnd(&seed) >> 24);
	return p;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	int ok;

	if (!fp)
		return -1;
	ok = fwrite(data, 1, len, fp) == len;
	return (fclose(fp) == 0 && ok) ? 0 : -1;
}

static char *read_text(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *s = calloc(1, 1 << 20);
	size_t n;

	if (!fp || !s) {
		if (fp)
			fclose(fp);
		free(s);
		return NULL;
	}
	n = fread(s, 1, (1 << 20) - 1, fp);
	s[n] = '\0';
	fclose(fp);
	return s;
}

/* nginx logs a request after answering it: wait for the line to appear. */
static char *wait_log(const char *path, const char *want)
{
	struct timespec ts = {0, 10 * 1000000L};

	for (int i = 0; i < 300; i++) {
		char *s = read_text(path);

		if (s && strstr(s, want))
			return s;
		free(s);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool wait_port(int port)
{
	struct timespec ts = {0, 20 * 1000000L};

	for (int i = 0; i < 500; i++) {
		if (port_open(port))
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* fork+exec argv with stdout to out_fd (-1: inherit); dies with us. */
static pid_t spawn(char *const argv[], int out_fd)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (out_fd >= 0)
		dup2(out_fd, STDOUT_FILENO);
	execvp(argv[0], argv);
	_exit(127);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(int status, void *arg)
{
	struct env *e = arg;

	(void)status;
	if (e->nginx > 0)
		kill(e->nginx, SIGTERM);
	if (e->fault > 0)
		kill(e->fault, SIGTERM);
	if (e->nginx > 0)
		waitpid(e->nginx, NULL, 0);
	if (e->fault > 0)
		waitpid(e->fault, NULL, 0);
	if (e->tmp[0] && !getenv("SFFS_KEEP_TMP"))
		nftw(e->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(e->data);
	free(e->fdata);
	free(e);
}

static int make_tmp(struct env *e)
{
	const char *base = getenv("SFFS_TEST_TMP");

	if (!base || !base[0])
		base = "/tmp";
	mkdir(base, 0755);
	snprintf(e->tmp, sizeof(e->tmp), "%s/test_fetch-XXXXXX", base);
	if (!mkdtemp(e->tmp)) {
		perror(e->tmp);
		e->tmp[0] = '\0';
		return -1;
	}
	return 0;
}

/* ---- servers ------------------------------------------------------------ */

static const char nginx_conf[] =
    "daemon off;\n"
    "master_process off;\n"
    "worker_processes 1;\n"
    "pid %1$s/nginx.pid;\n"
    "error_log %1$s/error.log;\n"
    "events { worker_connections 256; }\n"
    "http {\n"
    "  log_format t '$connection $connection_requests $status "
    "\"$http_range\" \"$http_cache_control\" \"$http_pragma\"';\n"
    "  log_format tp '$status $server_protocol';\n"
    "  access_log %1$s/access.log t;\n"
    "  client_body_temp_path %1$s/cb; proxy_temp_path %1$s/px;\n"
    "  fastcgi_temp_path %1$s/fc; uwsgi_temp_path %1$s/uw;\n"
    "  scgi_temp_path %1$s/sc;\n"
    "  keepalive_requests 10000;\n"
    "  server {\n"
    "    listen 127.0.0.1:%2$d;\n"
    "    root %1$s/www;\n"
    "    location = /redir { return 302 /data.bin; }\n"
    "    location = /loop { return 302 /loop; }\n"
    "  }\n"
    "  server {\n"
    "    listen 127.0.0.1:%3$d ssl http2;\n"
    "    access_log %1$s/tls-access.log tp;\n"
    "    ssl_certificate %1$s/cert.pem;\n"
    "    ssl_certificate_key %1$s/key.pem;\n"
    "    root %1$s/www;\n"
    "    location = /downgrade { return 302 http://127.0.0.1:%2$d/data.bin; }\n"
    "    location = /tls-redir { return 302 /data.bin; }\n"
    "  }\n"
    "}\n";

/* A self-signed certificate for the TLS server block, valid for
 * 127.0.0.1, so that it can be its own CA file. */
static int make_cert(struct env *e)
{
	char key[PATH_MAX + 16], cert[PATH_MAX + 16];
	char *argv[] = {"openssl",
			"req",
			"-x509",
			"-newkey",
			"ec",
			"-pkeyopt",
			"ec_paramgen_curve:prime256v1",
			"-nodes",
			"-subj",
			"/CN=localhost",
			"-addext",
			"subjectAltName=IP:127.0.0.1,DNS:localhost",
			"-days",
			"2",
			"-keyout",
			key,
			"-out",
			cert,
			NULL};
	int devnull = open("/dev/null", O_WRONLY), status = -1;
	pid_t pid;

	snprintf(key, sizeof(key), "%s/key.pem", e->tmp);
	snprintf(cert, sizeof(cert), "%s/cert.pem", e->tmp);
	pid = spawn(argv, devnull);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int start_nginx(struct env *e)
{
	char conf[PATH_MAX + 16], www[PATH_MAX + 16], path[PATH_MAX + 32];
	const char *bin =
	    access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : "nginx";
	FILE *fp;

	snprintf(www, sizeof(www), "%s/www", e->tmp);
	snprintf(path, sizeof(path), "%s/data.bin", www);
	snprintf(conf, sizeof(conf), "%s/nginx.conf", e->tmp);
	e->nginx_port = free_port();
	e->tls_port = free_port();
	if (make_cert(e) < 0)
		return -1;
	fp = fopen(conf, "w");
	if (mkdir(www, 0755) < 0 || write_file(path, e->data, DATA_SIZE) < 0 ||
	    !fp) {
		if (fp)
			fclose(fp);
		return -1;
	}
	fprintf(fp, nginx_conf, e->tmp, e->nginx_port, e->tls_port);
	fclose(fp);
	{
		char *argv[] = {(char *)bin, "-p", e->tmp, "-e",
				"stderr",    "-c", conf,   NULL};

		e->nginx = spawn(argv, -1);
	}
	return wait_port(e->nginx_port) && wait_port(e->tls_port) ? 0 : -1;
}

static int start_fault(struct env *e)
{
	char script[PATH_MAX], body[PATH_MAX + 16], line[32] = "";
	const char *src = getenv("SFFS_SRC");
	int pfd[2];
	FILE *fp;

	snprintf(script, sizeof(script), "%s/tests/lib/faultserver.py",
		 src ? src : ".");
	snprintf(body, sizeof(body), "%s/fault.bin", e->tmp);
	if (write_file(body, e->fdata, FAULT_SIZE) < 0 || pipe(pfd) < 0)
		return -1;
	{
		char *argv[] = {"python3", script, body, NULL};

		e->fault = spawn(argv, pfd[1]);
	}
	close(pfd[1]);
	fp = fdopen(pfd[0], "r");
	if (!fp)
		return -1;
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	fclose(fp);
	e->fault_port = atoi(line);
	return e->fault_port > 0 ? 0 : -1;
}

/* ---- sinks -------------------------------------------------------------- */

struct collect {
	unsigned char *buf;
	size_t cap, len;
	size_t calls;
	size_t stop_after; /* stop (return -ECANCELED) once len >= this */
};

static int collect_sink(void *arg, const void *data, size_t len)
{
	struct collect *c = arg;

	if (len > c->cap - c->len)
		return -EOVERFLOW;
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->calls++;
	if (c->stop_after && c->len >= c->stop_after)
		return -ECANCELED;
	return 0;
}

static void collect_init(struct collect *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->buf = malloc(cap ? cap : 1);
	c->cap = cap;
}

/* ---- tests: sources ------------------------------------------------------ */

static void test_resolve(void)
{
	static const struct {
		const char *src;
		const char *want; /* NULL: error */
		enum fetch_kind kind;
	} tab[] = {
	    {"s3://bucket/path/to/key.tar.gz",
	     "https://bucket.s3.amazonaws.com/path/to/key.tar.gz",
	     FETCH_KIND_HTTP},
	    {"s3://vantage-public-assets/slurm-factory/25.11/noble/a b",
	     "https://vantage-public-assets.s3.amazonaws.com/"
	     "slurm-factory/25.11/noble/a%20b",
	     FETCH_KIND_HTTP},
	    {"s3://bucket", NULL, FETCH_KIND_HTTP},
	    {"s3://bucket/", NULL, FETCH_KIND_HTTP},
	    {"s3:///key", NULL, FETCH_KIND_HTTP},
	    {"http://h:1/x", "http://h:1/x", FETCH_KIND_HTTP},
	    {"HTTPS://h/x", "HTTPS://h/x", FETCH_KIND_HTTP},
	    {"file:///tmp/a%20b", "/tmp/a b", FETCH_KIND_FILE},
	    {"file://localhost/tmp/x", "/tmp/x", FETCH_KIND_FILE},
	    {"rel/path.tar.gz", "rel/path.tar.gz", FETCH_KIND_FILE},
	    {"ftp://h/x", NULL, FETCH_KIND_HTTP},
	    {"", NULL, FETCH_KIND_HTTP},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		enum fetch_kind kind = 99;
		char *got = fetch_resolve_source(tab[i].src, NULL, &kind, err,
						 sizeof(err));

		if (!tab[i].want) {
			CHECK(got == NULL && err[0]);
		} else {
			CHECK(got && strcmp(got, tab[i].want) == 0);
			CHECK(kind == tab[i].kind);
			if (!got || strcmp(got, tab[i].want))
				fprintf(stderr, "  %s -> %s\n", tab[i].src,
					got ? got : err);
		}
		free(got);
	}
}

static void test_sibling(void)
{
	static const struct {
		const char *url;
		const char *want; /* NULL: fails with EINVAL */
	} tab[] = {
	    {"https://host/a.tar.gz", "https://host/a.tar.gz.sfidx"},
	    {"https://host/a.tar.gz?X-Amz-Signature=ab%2Fc&X-Amz-Date=1",
	     "https://host/a.tar.gz.sfidx?X-Amz-Signature=ab%2Fc&X-Amz-Date=1"},
	    {"https://host/a.tar.gz#part", "https://host/a.tar.gz.sfidx#part"},
	    {"http://u:p@127.0.0.1:8080/d/a.tar.gz?x=1#f",
	     "http://u:p@127.0.0.1:8080/d/a.tar.gz.sfidx?x=1#f"},
	    {"https://h/a%20b.tar.gz", "https://h/a%20b.tar.gz.sfidx"},
	    {"s3://bucket/k/a.tar.gz", "s3://bucket/k/a.tar.gz.sfidx"},
	    {"file:///tmp/a b#1.tar.gz", "file:///tmp/a b#1.tar.gz.sfidx"},
	    {"/tmp/a?.tar.gz", "/tmp/a?.tar.gz.sfidx"},
	    {"rel/a.tar.gz", "rel/a.tar.gz.sfidx"},
	    {"https://host/", NULL},
	    {"https://host?x=1", NULL},
	    {"https://h/dir/?x=1", NULL},
	    {"https://", NULL},
	    {"bad scheme://x/y", NULL},
	    {"", NULL},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		char *got;

		errno = 0;
		got = fetch_sibling_url(tab[i].url, ".sfidx");
		if (!tab[i].want)
			CHECK(got == NULL && errno == EINVAL);
		else
			CHECK(got && strcmp(got, tab[i].want) == 0);
		if (tab[i].want ? !got || strcmp(got, tab[i].want) : !!got)
			fprintf(stderr, "  sibling of %s: %s\n", tab[i].url,
				got ? got : strerror(errno));
		free(got);
	}
}

static void quick_opts(struct fetch_opts *o)
{
	fetch_opts_default(o);
	o->retries = 3;
	o->backoff_ms = 10;
	o->backoff_max_ms = 50;
}

static void expect_open_error(const char *url, const char *want)
{
	struct fetch_opts o;
	struct fetch *f;
	char err[512] = "x";

	quick_opts(&o);
	o.retries = 1;
	f = fetch_open(url, &o, err, sizeof(err));
	CHECK(f == NULL);
	CHECK(strstr(err, want) != NULL);
	CHECK(strchr(err, '\n') == NULL);
	if (!strstr(err, want))
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", url, err,
			want);
	fetch_free(f);
}

static void test_errors(struct env *e)
{
	char url[PATH_MAX + 32], want[PATH_MAX + 64];
	int port = free_port();

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nope", e->nginx_port);
	snprintf(want, sizeof(want), "HTTP 404 Not Found: %s", url);
	expect_open_error(url, want);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port);
	snprintf(want, sizeof(want),
		 "cannot connect to 127.0.0.1:%d: Connection refused", port);
	expect_open_error(url, want);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/loop", e->nginx_port);
	expect_open_error(url, "redirects");
	snprintf(url, sizeof(url), "%s/no-such-file", e->tmp);
	expect_open_error(url, "No such file or directory");
	expect_open_error(e->tmp, "not a regular file");
	expect_open_error("gopher://x/y", "unsupported source");
}

/* ---- tests: nginx ---------------------------------------------------------
 */

static struct fetch *open_nginx(struct env *e, const char *path)
{
	char url[128], err[512];
	struct fetch_opts o;
	struct fetch *f;

	quick_opts(&o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->nginx_port,
		 path);
	f = fetch_open(url, &o, err, sizeof(err));
	if (!f)
		fprintf(stderr, "  open %s: %s\n", url, err);
	return f;
}

static void test_basic(struct env *e)
{
	struct fetch *f = open_nginx(e, "/data.bin");
	unsigned char *buf = malloc(DATA_SIZE + 16);
	struct fetch_stats st;

	CHECK(f != NULL);
	if (!f || !buf)
		goto out;
	CHECK_EQ_U64(fetch_size(f), DATA_SIZE);
	CHECK(fetch_identity(f)[0] == '"'); /* nginx sends a strong ETag */
	CHECK(strstr(fetch_url(f), "/data.bin") != NULL);
	CHECK(fetch_range(f, 0, DATA_SIZE, buf, 0) == 0);
	CHECK(memcmp(buf, e->data, DATA_SIZE) == 0);
	CHECK(fetch_range(f, DATA_SIZE - 1, 1, buf, 0) == 0);
	CHECK(buf[0] == e->data[DATA_SIZE - 1]);
	CHECK(fetch_range(f, DATA_SIZE, 0, buf, 0) == 0);
	CHECK(fetch_range(f, DATA_SIZE, 1, buf, 0) == -EINVAL);
	CHECK(fetch_range(f, 1, DATA_SIZE, buf, 0) == -EINVAL);
	CHECK(fetch_range(f, UINT64_MAX, 2, buf, 0) == -EINVAL);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.requests, 3); /* probe + 2 ranges */
	CHECK_EQ_U64(st.retries, 0);
	CHECK(st.bytes >= DATA_SIZE + 1);
out:
	free(buf);
	fetch_free(f);
}

/* Opened from what a cache recorded, without a request: reads are checked
 * against it (a wrong validator is a change), and work as after a probe;
 * with no server, opening still works and reads fail with its errno. */
static void test_pinned(struct env *e)
{
	struct fetch *f = open_nginx(e, "/data.bin"), *p;
	struct fetch_pinned pin = {0};
	struct fetch_opts o;
	struct fetch_stats st;
	unsigned char buf[64];
	char url[128], err[512];

	CHECK(f != NULL);
	if (!f)
		return;
	quick_opts(&o);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/data.bin",
		 e->nginx_port);
	pin.size = fetch_size(f);
	pin.identity = fetch_identity(f);
	p = fetch_open_pinned(url, &o, &pin, err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		fetch_get_stats(p, &st);
		CHECK_EQ_U64(st.requests, 0);
		CHECK_EQ_U64(fetch_size(p), DATA_SIZE);
		CHECK(!strcmp(fetch_identity(p), fetch_identity(f)));
		CHECK(fetch_range(p, 10, sizeof(buf), buf, 0) == 0);
		CHECK(memcmp(buf, e->data + 10, sizeof(buf)) == 0);
		fetch_free(p);
	}
	pin.identity = "\"another\"";
	p = fetch_open_pinned(url, &o, &pin, err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		CHECK(fetch_range(p, 0, sizeof(buf), buf, 0) == -EIO);
		fetch_free(p);
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/data.bin", free_port());
	pin.identity = fetch_identity(f);
	p = fetch_open_pinned(url, &o, &pin, err, sizeof(err));
	CHECK(p != NULL);
	if (p) {
		CHECK(fetch_range(p, 0, sizeof(buf), buf, 0) == -ECONNREFUSED);
		fetch_free(p);
	}
	fetch_free(f);
}

static void test_redirect(struct env *e)
{
	struct fetch *f = open_nginx(e, "/redir");
	unsigned char buf[4096];

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK_EQ_U64(fetch_size(f), DATA_SIZE);
	CHECK(fetch_range(f, 12345, sizeof(buf), buf, 0) == 0);
	CHECK(memcmp(buf, e->data + 12345, sizeof(buf)) == 0);
	fetch_free(f);
}

struct worker {
	struct env *e;
	struct fetch *f;
	uint64_t seed;
	unsigned bad, failed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(256 * 1024);

	for (int i = 0; buf && i < RANGES_PER_THREAD; i++) {
		uint64_t off = rnd(&w->seed) % DATA_SIZE;
		size_t len = (size_t)(rnd(&w->seed) % (256 * 1024));

		if (i % 10 == 0)
			off = DATA_SIZE - (off % 1000) - 1; /* near the end */
		if (len > DATA_SIZE - off)
			len = DATA_SIZE - off;
		if (fetch_range(w->f, off, len, buf, 0) != 0)
			w->failed++;
		else if (memcmp(buf, w->e->data + off, len) != 0)
			w->bad++;
	}
	free(buf);
	return NULL;
}

/* Distinct nginx connections among log lines with status 206. */
static unsigned count_connections(struct env *e, unsigned *lines)
{
	char path[PATH_MAX + 16], *log, *p, *save = NULL;
	unsigned long seen[64];
	unsigned n = 0;

	*lines = 0;
	snprintf(path, sizeof(path), "%s/access.log", e->tmp);
	log = read_text(path);
	for (p = log ? strtok_r(log, "\n", &save) : NULL; p;
	     p = strtok_r(NULL, "\n", &save)) {
		unsigned long c = strtoul(p, NULL, 10);
		unsigned i;

		(*lines)++;
		for (i = 0; i < n && seen[i] != c; i++)
			;
		if (i == n && n < 64)
			seen[n++] = c;
	}
	free(log);
	return n;
}

static void test_threads(struct env *e)
{
	struct fetch *f;
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	struct fetch_stats st;
	char path[PATH_MAX + 16];
	unsigned bad = 0, failed = 0, conns, lines;

	snprintf(path, sizeof(path), "%s/access.log", e->tmp);
	CHECK(truncate(path, 0) == 0);
	f = open_nginx(e, "/data.bin");
	CHECK(f != NULL);
	if (!f)
		return;
	for (int i = 0; i < NTHREADS; i++) {
		w[i] =
		    (struct worker){e, f, e->seed * 31 + (uint64_t)i + 1, 0, 0};
		CHECK(pthread_create(&t[i], NULL, worker_main, &w[i]) == 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
		failed += w[i].failed;
	}
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(failed, 0);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.requests, 1 + NTHREADS * RANGES_PER_THREAD);
	fetch_free(f);
	/* connection reuse: about one connection per concurrent caller */
	for (int i = 0; i < 200; i++) {
		struct timespec ts = {0, 10 * 1000000L};

		conns = count_connections(e, &lines);
		if (lines >= NTHREADS * RANGES_PER_THREAD)
			break;
		nanosleep(&ts, NULL);
	}
	CHECK(lines >= NTHREADS * RANGES_PER_THREAD);
	CHECK(conns >= 1 && conns <= 2 * NTHREADS);
	printf("threads: %u requests over %u connections\n", lines, conns);
}

static void test_stream(struct env *e)
{
	struct fetch *f = open_nginx(e, "/data.bin");
	struct collect c;

	CHECK(f != NULL);
	if (!f)
		return;
	collect_init(&c, DATA_SIZE);
	CHECK(fetch_stream(f, 0, 0, collect_sink, &c) == 0);
	CHECK_EQ_U64(c.len, DATA_SIZE);
	CHECK(c.buf && memcmp(c.buf, e->data, DATA_SIZE) == 0);
	c.len = 0;
	CHECK(fetch_stream(f, 1000, 777777, collect_sink, &c) == 0);
	CHECK_EQ_U64(c.len, 777777 - 1000);
	CHECK(memcmp(c.buf, e->data + 1000, 777777 - 1000) == 0);
	c.len = 0;
	c.stop_after = 100000;
	CHECK(fetch_stream(f, 0, 0, collect_sink, &c) == -ECANCELED);
	CHECK(c.len < DATA_SIZE);
	c.len = 0;
	CHECK(fetch_stream(f, 5, 5, collect_sink, &c) == 0);
	CHECK_EQ_U64(c.len, 0);
	CHECK(fetch_stream(f, 6, 5, collect_sink, &c) == -EINVAL);
	CHECK(fetch_stream(f, 0, DATA_SIZE + 1, collect_sink, &c) == -EINVAL);
	free(c.buf);
	fetch_free(f);
}

static void test_nocache(struct env *e)
{
	struct fetch *f = open_nginx(e, "/data.bin");
	char path[PATH_MAX + 16], *log;
	unsigned char buf[100];

	CHECK(f != NULL);
	if (!f)
		return;
	snprintf(path, sizeof(path), "%s/access.log", e->tmp);
	CHECK(truncate(path, 0) == 0);
	CHECK(fetch_range(f, 10, sizeof(buf), buf, 0) == 0);
	CHECK(fetch_range(f, 20, sizeof(buf), buf, FETCH_NOCACHE) == 0);
	log = wait_log(path, "206 \"bytes=20-119\" \"no-cache\" "
			     "\"no-cache\"\n");
	CHECK(log != NULL);
	CHECK(log && strstr(log, "206 \"bytes=10-109\" \"-\" \"-\"\n"));
	free(log);
	fetch_free(f);
}

/* Rewrites www/data.bin's mtime: nginx's ETag (mtime-size) changes. */
static void test_changed_nginx(struct env *e)
{
	struct fetch *f = open_nginx(e, "/data.bin");
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	char path[PATH_MAX + 16];
	unsigned char buf[64];
	struct fetch_stats st;

	CHECK(f != NULL);
	if (!f)
		return;
	snprintf(path, sizeof(path), "%s/www/data.bin", e->tmp);
	CHECK(fetch_range(f, 0, sizeof(buf), buf, 0) == 0);
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
	CHECK(fetch_range(f, 0, sizeof(buf), buf, 0) == -EIO);
	CHECK(fetch_range(f, 64, sizeof(buf), buf, FETCH_NOCACHE) == -EIO);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.retries, 0);
	fetch_free(f);
}

/* Under adoption a new ETag of the same size is served, counted once. */
static void test_adopt_nginx(struct env *e)
{
	struct fetch *f = open_nginx(e, "/data.bin");
	struct timespec ts[2] = {{2000000000, 0}, {2000000000, 0}};
	char path[PATH_MAX + 16];
	unsigned char buf[64];
	struct fetch_stats st;

	CHECK(f != NULL);
	if (!f)
		return;
	fetch_adopt_validators(f, true);
	snprintf(path, sizeof(path), "%s/www/data.bin", e->tmp);
	CHECK(fetch_range(f, 0, sizeof(buf), buf, 0) == 0);
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
	CHECK(fetch_range(f, 100, sizeof(buf), buf, 0) == 0);
	CHECK(memcmp(buf, e->data + 100, sizeof(buf)) == 0);
	CHECK(fetch_range(f, 200, sizeof(buf), buf, FETCH_NOCACHE) == 0);
	CHECK(memcmp(buf, e->data + 200, sizeof(buf)) == 0);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.adoptions, 1);
	CHECK_EQ_U64(st.errors, 0);
	fetch_free(f);
}

/* https -> https is followed; https -> http is refused, and says so. */
static void test_tls_redirects(struct env *e, const struct fetch_opts *o)
{
	char url[128], err[512];
	struct fetch *f;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d/tls-redir",
		 e->tls_port);
	f = fetch_open(url, o, err, sizeof(err));
	CHECK(f != NULL);
	if (f)
		CHECK_EQ_U64(fetch_size(f), DATA_SIZE);
	else
		fprintf(stderr, "  %s: %s\n", url, err);
	fetch_free(f);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/downgrade",
		 e->tls_port);
	f = fetch_open(url, o, err, sizeof(err));
	CHECK(f == NULL);
	CHECK(strstr(err, "refusing redirect from https to http") != NULL);
	if (!strstr(err, "refusing redirect"))
		fprintf(stderr, "  %s: got \"%s\"\n", url, err);
	fetch_free(f);
}

/* Opens url with o, reads a range, and checks the bytes. */
static bool tls_read_ok(struct env *e, const char *url,
			const struct fetch_opts *o)
{
	char err[512];
	unsigned char buf[3000];
	struct fetch *f = fetch_open(url, o, err, sizeof(err));
	bool ok;

	if (!f) {
		fprintf(stderr, "  %s: %s\n", url, err);
		return false;
	}
	ok = fetch_size(f) == DATA_SIZE &&
	     fetch_range(f, 4000000, sizeof(buf), buf, 0) == 0 &&
	     memcmp(buf, e->data + 4000000, sizeof(buf)) == 0;
	fetch_free(f);
	return ok;
}

static void expect_open_error_opts(const char *url, const struct fetch_opts *o,
				   const char *want)
{
	char err[512] = "x";
	struct fetch *f = fetch_open(url, o, err, sizeof(err));

	CHECK(f == NULL);
	CHECK(strstr(err, want) != NULL);
	if (!strstr(err, want))
		fprintf(stderr, "  %s: got \"%s\", want \"%s\"\n", url, err,
			want);
	fetch_free(f);
}

/* The cafile option: used, copied, and refused when it cannot be read. */
static void test_tls_cafile(struct env *e, const char *url)
{
	char ca[PATH_MAX + 16], want[PATH_MAX + 64];
	struct fetch_opts o;
	struct fetch *f;

	quick_opts(&o);
	snprintf(ca, sizeof(ca), "%s/cert.pem", e->tmp);
	o.cafile = ca;
	CHECK(tls_read_ok(e, url, &o));
	f = fetch_open(url, &o, want, sizeof(want));
	CHECK(f && f->cafile && f->cafile != ca && !strcmp(f->cafile, ca));
	fetch_free(f);
	snprintf(ca, sizeof(ca), "%s/nope.pem", e->tmp);
	snprintf(want, sizeof(want),
		 "cannot use CA file %s: No such file or directory", ca);
	expect_open_error_opts(url, &o, want);
	o.cafile = e->tmp;
	expect_open_error_opts(url, &o, "not a regular file");
}

/* CURL_CA_BUNDLE, else SSL_CERT_FILE / SSL_CERT_DIR, as the curl tool. */
static void test_tls_env(struct env *e, const char *url)
{
	char ca[PATH_MAX + 16], dir[PATH_MAX + 16], link[PATH_MAX + 32];
	char *rehash[] = {"openssl", "rehash", dir, NULL};
	struct fetch_opts o;
	int status = -1;
	pid_t pid;

	quick_opts(&o);
	snprintf(ca, sizeof(ca), "%s/cert.pem", e->tmp);
	snprintf(dir, sizeof(dir), "%s/certs", e->tmp);
	CHECK(setenv("CURL_CA_BUNDLE", ca, 1) == 0);
	CHECK(tls_read_ok(e, url, &o));
	CHECK(setenv("CURL_CA_BUNDLE", dir, 1) == 0);
	expect_open_error_opts(url, &o, "(from CURL_CA_BUNDLE): No such file");
	unsetenv("CURL_CA_BUNDLE");
	CHECK(setenv("SSL_CERT_FILE", ca, 1) == 0);
	CHECK(tls_read_ok(e, url, &o));
	unsetenv("SSL_CERT_FILE");
	/* a hashed directory, as c_rehash makes */
	snprintf(link, sizeof(link), "%s/ca.pem", dir);
	CHECK(mkdir(dir, 0755) == 0 && symlink(ca, link) == 0);
	pid = spawn(rehash, -1);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0);
	CHECK(setenv("SSL_CERT_DIR", dir, 1) == 0);
	CHECK(tls_read_ok(e, url, &o));
	unsetenv("SSL_CERT_DIR");
}

/* The TLS server speaks HTTP/2 (ALPN): fetch must have used it. */
static void test_tls_http2(struct env *e)
{
	char path[PATH_MAX + 16], *log;

	snprintf(path, sizeof(path), "%s/tls-access.log", e->tmp);
	log = wait_log(path, "206 HTTP/2.0\n");
	CHECK(log != NULL);
	CHECK(log && !strstr(log, "HTTP/1.1"));
	free(log);
}

static void test_tls(struct env *e)
{
	char url[128], ca[PATH_MAX + 16];
	struct fetch_opts o;

	unsetenv("CURL_CA_BUNDLE");
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/data.bin",
		 e->tls_port);
	expect_open_error(url, "TLS certificate problem with 127.0.0.1:");
	quick_opts(&o);
	o.insecure = true;
	CHECK(tls_read_ok(e, url, &o));
	test_tls_cafile(e, url);
	test_tls_env(e, url);
	o.insecure = false;
	snprintf(ca, sizeof(ca), "%s/cert.pem", e->tmp);
	o.cafile = ca;
	test_tls_redirects(e, &o);
	test_tls_http2(e);
}

/* ---- tests: local files ----------------------------------------------------
 */

/* A touched file (same size) is adopted under adoption; a grown one is
 * -ESTALE. */
static void adopt_local(struct env *e)
{
	struct timespec ts[2] = {{1500000000, 0}, {1500000000, 0}};
	char path[PATH_MAX + 16], err[512];
	unsigned char buf[100];
	struct fetch_stats st;
	struct fetch *f;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/adopt.bin", e->tmp);
	CHECK(write_file(path, e->fdata, FAULT_SIZE) == 0);
	f = fetch_open(path, NULL, err, sizeof(err));
	CHECK(f != NULL);
	if (!f)
		return;
	fetch_adopt_validators(f, true);
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
	CHECK(fetch_range(f, 50, sizeof(buf), buf, 0) == 0);
	CHECK(memcmp(buf, e->fdata + 50, sizeof(buf)) == 0);
	CHECK(fetch_range(f, 60, sizeof(buf), buf, 0) == 0);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.adoptions, 1);
	fp = fopen(path, "ab");
	CHECK(fp && fputc('x', fp) == 'x');
	if (fp)
		fclose(fp);
	CHECK(fetch_range(f, 0, sizeof(buf), buf, 0) == -ESTALE);
	fetch_free(f);
}

static void test_local(struct env *e)
{
	char path[PATH_MAX + 16], url[PATH_MAX + 32], err[512];
	struct timespec ts[2] = {{1000000000, 0}, {1000000000, 0}};
	unsigned char buf[5000];
	struct fetch *f, *g;
	struct collect c;

	snprintf(path, sizeof(path), "%s/fault.bin", e->tmp);
	snprintf(url, sizeof(url), "file://%s", path);
	f = fetch_open(path, NULL, err, sizeof(err));
	g = fetch_open(url, NULL, err, sizeof(err));
	CHECK(f && g);
	if (!f || !g)
		goto out;
	CHECK_EQ_U64(fetch_size(f), FAULT_SIZE);
	CHECK(strcmp(fetch_url(f), url) == 0);
	CHECK(strcmp(fetch_url(g), url) == 0);
	CHECK(strcmp(fetch_identity(f), fetch_identity(g)) == 0);
	CHECK(strchr(fetch_identity(f), '-') != NULL);
	CHECK(fetch_range(g, 777, sizeof(buf), buf, 0) == 0);
	CHECK(memcmp(buf, e->fdata + 777, sizeof(buf)) == 0);
	CHECK(fetch_range(g, FAULT_SIZE - 1, 2, buf, 0) == -EINVAL);
	collect_init(&c, FAULT_SIZE);
	CHECK(fetch_stream(f, 0, 0, collect_sink, &c) == 0);
	CHECK_EQ_U64(c.len, FAULT_SIZE);
	CHECK(memcmp(c.buf, e->fdata, FAULT_SIZE) == 0);
	free(c.buf);
	CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
	CHECK(fetch_range(f, 0, 10, buf, 0) == -EIO);
	CHECK(fetch_range(g, 0, 10, buf, 0) == -EIO);
	adopt_local(e);
out:
	fetch_free(f);
	fetch_free(g);
}

/* ---- tests: fault injection ------------------------------------------------
 */

static struct fetch *open_fault(struct env *e, const char *path,
				unsigned low_speed_s, char *err, size_t errlen)
{
	char url[128];
	struct fetch_opts o;

	quick_opts(&o);
	if (low_speed_s)
		o.low_speed_time_s = low_speed_s;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", e->fault_port,
		 path);
	return fetch_open(url, &o, err, errlen);
}

enum op { OP_RANGE, OP_STREAM };

static const struct fault_case {
	const char *path;
	enum op op;
	uint64_t off, len;
	int want; /* fetch_range/stream result */
	unsigned min_retries, max_retries;
	const char *identity; /* NULL: don't check */
	unsigned max_seconds; /* 0: don't check */
} fault_cases[] = {
    {"/ok/a", OP_RANGE, 0, FAULT_SIZE, 0, 0, 0, "\"v1\"", 0},
    {"/flaky/a", OP_RANGE, 100, 200000, 0, 2, 2, "\"v1\"", 0},
    {"/busy/a", OP_RANGE, 0, 1000, 0, 1, 1, NULL, 0},
    {"/reset/a", OP_RANGE, 0, FAULT_SIZE, 0, 1, 1, NULL, 0},
    {"/reset/s", OP_STREAM, 3, FAULT_SIZE - 3, 0, 1, 1, NULL, 0},
    {"/short/a", OP_RANGE, 10, 500000, 0, 1, 1, NULL, 0},
    {"/short/s", OP_STREAM, 0, FAULT_SIZE, 0, 1, 1, NULL, 0},
    /* the server stalls 6 s; the 1 s low-speed limit must cut it short */
    {"/stall/s", OP_STREAM, 0, FAULT_SIZE, 0, 1, 1, NULL, 5},
    /* a 200 to one data request after the probe is coped with */
    {"/once200/a", OP_RANGE, 4321, 100000, 0, 0, 0, NULL, 0},
    {"/once200/s", OP_STREAM, 999, 5000, 0, 0, 0, NULL, 0},
    {"/once200/z", OP_RANGE, FAULT_SIZE - 10, 10, 0, 0, 0, NULL, 0},
    {"/badrange/a", OP_RANGE, 50, 5000, -EIO, 0, 0, NULL, 0},
    {"/long/a", OP_RANGE, 50, 5000, -EIO, 0, 0, NULL, 0},
    {"/changing/a", OP_RANGE, 0, 5000, -EIO, 0, 0, "\"v1\"", 0},
    {"/changing/s", OP_STREAM, 0, 5000, -EIO, 0, 0, NULL, 0},
    {"/lastmod/a", OP_RANGE, 0, 5000, 0, 0, 0, "Mon, 01 Jan 2024 00:00:00 GMT",
     0},
    {"/noid/a", OP_RANGE, 7, 5000, 0, 0, 0, "", 0},
    /* a 403 on a data request is a throttle, retried, never "missing" */
    {"/deny/a", OP_RANGE, 0, 5000, 0, 1, 1, NULL, 0},
    /* 5xx for good: EIO after the 3 retries, not ENOENT nor EBADMSG */
    {"/down/a", OP_RANGE, 0, 5000, -EIO, 3, 3, NULL, 0},
    {"/grow/a", OP_RANGE, 0, 5000, -EIO, 0, 0, NULL, 0},
};

static int run_op(struct fetch *f, const struct fault_case *fc,
		  struct collect *c)
{
	size_t guard = 4096;

	collect_init(c, fc->len + guard);
	memset(c->buf, 0xA5, fc->len + guard);
	if (fc->op == OP_STREAM) {
		c->cap = fc->len;
		return fetch_stream(f, fc->off, fc->off + fc->len, collect_sink,
				    c);
	}
	c->len = fc->len;
	return fetch_range(f, fc->off, fc->len, c->buf, 0);
}

static void test_fault_case(struct env *e, const struct fault_case *fc)
{
	char err[512];
	struct fetch *f = open_fault(e, fc->path, 1, err, sizeof(err));
	struct fetch_stats st;
	struct collect c;
	int rc, fails = (int)check_fail;
	time_t t0;

	CHECK(f != NULL);
	if (!f) {
		fprintf(stderr, "  %s: %s\n", fc->path, err);
		return;
	}
	CHECK_EQ_U64(fetch_size(f), FAULT_SIZE);
	if (fc->identity)
		CHECK(strcmp(fetch_identity(f), fc->identity) == 0);
	t0 = time(NULL);
	rc = run_op(f, fc, &c);
	CHECK(rc == fc->want);
	if (fc->max_seconds)
		CHECK(time(NULL) - t0 < fc->max_seconds);
	if (fc->want == 0) {
		CHECK_EQ_U64(c.len, fc->len);
		CHECK(memcmp(c.buf, e->fdata + fc->off, fc->len) == 0);
	}
	/* nothing is ever written past the range */
	CHECK(c.buf[fc->len] == 0xA5 && c.buf[fc->len + 4095] == 0xA5);
	fetch_get_stats(f, &st);
	CHECK(st.retries >= fc->min_retries && st.retries <= fc->max_retries);
	if ((int)check_fail != fails)
		fprintf(stderr, "  case %s: rc %d, retries %llu\n", fc->path,
			rc, (unsigned long long)st.retries);
	free(c.buf);
	fetch_free(f);
}

/* ---- tests: deadlines -------------------------------------------------- */

#define MS 1000000ull

/* The server stalls 6 s; a deadline of 1.5 s ends the call at about 1.5 s
 * (the low-speed limit, 30 s here, would not), without a retry. */
static void deadline_stall(struct env *e)
{
	char err[512];
	unsigned char *buf = malloc(500000);
	struct fetch *f = open_fault(e, "/stall/deadline", 0, err, sizeof(err));
	struct fetch_stats st;
	uint64_t t0, el;

	CHECK(f != NULL && buf != NULL);
	if (!f || !buf)
		goto out;
	t0 = fetch_now_ns();
	CHECK(fetch_range_until(f, 0, 500000, buf, 0, t0 + 1500 * MS) ==
	      -ETIMEDOUT);
	el = fetch_now_ns() - t0;
	printf("deadline: a stalled read gave up after %.2f s\n", el / 1e9);
	CHECK(el >= 1000 * MS && el < 4000 * MS);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.retries, 0);
	CHECK_EQ_U64(st.errors, 1);
out:
	free(buf);
	fetch_free(f);
}

/* A reset whose back-off (4-12 s) would end past the deadline (2 s) fails
 * at once rather than sleeping. */
static void deadline_backoff(struct env *e)
{
	char url[128], err[512];
	unsigned char *buf = malloc(500000);
	struct fetch_opts o;
	struct fetch *f;
	struct fetch_stats st;
	uint64_t t0, el;

	quick_opts(&o);
	o.backoff_ms = o.backoff_max_ms = 8000;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/reset/deadline",
		 e->fault_port);
	f = fetch_open(url, &o, err, sizeof(err));
	CHECK(f != NULL && buf != NULL);
	if (!f || !buf)
		goto out;
	t0 = fetch_now_ns();
	CHECK(fetch_range_until(f, 0, 500000, buf, 0, t0 + 2000 * MS) ==
	      -ETIMEDOUT);
	el = fetch_now_ns() - t0;
	printf("deadline: a reset gave up after %.3f s, not backing off\n",
	       el / 1e9);
	CHECK(el < 1500 * MS);
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.retries, 0);
out:
	free(buf);
	fetch_free(f);
}

/* A pooled handle must not keep a deadline call's timeout: after a call
 * with 200 ms to go, a call without deadline waits out the stall (the 1 s
 * low-speed limit cuts it, and the retry succeeds). */
static void deadline_reset(struct env *e)
{
	char err[512];
	unsigned char *buf = malloc(500000);
	struct fetch *f = open_fault(e, "/stall/reset", 1, err, sizeof(err));
	uint64_t t0, el;

	CHECK(f != NULL && buf != NULL);
	if (!f || !buf)
		goto out;
	t0 = fetch_now_ns();
	CHECK(fetch_range_until(f, 0, 100, buf, 0, t0 + 200 * MS) == 0);
	t0 = fetch_now_ns();
	CHECK(fetch_range(f, 0, 500000, buf, 0) == 0);
	el = fetch_now_ns() - t0;
	CHECK(el >= 700 * MS);
	CHECK(memcmp(buf, e->fdata, 500000) == 0);
out:
	free(buf);
	fetch_free(f);
}

/* A passed deadline fails at once, with no request, for both backends; a
 * far one changes nothing. */
static void deadline_passed(struct env *e)
{
	char path[PATH_MAX + 16], err[512];
	unsigned char buf[100];
	struct fetch *f[2];
	struct fetch_stats st;

	snprintf(path, sizeof(path), "%s/fault.bin", e->tmp);
	f[0] = open_nginx(e, "/data.bin");
	f[1] = fetch_open(path, NULL, err, sizeof(err));
	CHECK(f[0] && f[1]);
	for (int i = 0; i < 2 && f[0] && f[1]; i++) {
		const unsigned char *want = i ? e->fdata : e->data;

		CHECK(fetch_range_until(f[i], 5, sizeof(buf), buf, 0, 1) ==
		      -ETIMEDOUT);
		CHECK(fetch_range_until(f[i], 5, sizeof(buf), buf, 0,
					fetch_now_ns() + 30000 * MS) == 0);
		CHECK(memcmp(buf, want + 5, sizeof(buf)) == 0);
		fetch_get_stats(f[i], &st);
		CHECK_EQ_U64(st.requests, i ? 1 : 2); /* the probe + one */
		CHECK_EQ_U64(st.errors, 1);
	}
	fetch_free(f[0]);
	fetch_free(f[1]);
}

static void test_deadlines(struct env *e)
{
	uint64_t a = fetch_now_ns(), b = fetch_now_ns();

	CHECK(a > 0 && b >= a);
	deadline_passed(e);
	deadline_backoff(e);
	deadline_reset(e);
	deadline_stall(e);
}

/* Runs fn with stderr going to a file; returns what was written. */
static char *capture_stderr(struct env *e, void (*fn)(struct env *))
{
	char path[PATH_MAX + 16];
	int saved = dup(STDERR_FILENO), fd;

	snprintf(path, sizeof(path), "%s/stderr.txt", e->tmp);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || saved < 0)
		return NULL;
	dup2(fd, STDERR_FILENO);
	close(fd);
	fn(e);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return read_text(path);
}

/* Under adoption, ETag "v1" then "v2" with the same bytes and size: every
 * read is served and the change is logged once (test_faults counts). */
static void adopt_changing(struct env *e)
{
	char err[512];
	unsigned char buf[100];
	struct fetch *f = open_fault(e, "/changing/adopt", 0, err, sizeof(err));
	struct fetch_stats st;

	CHECK(f != NULL);
	if (!f)
		return;
	fetch_adopt_validators(f, true);
	for (int i = 0; i < 3; i++) {
		CHECK(fetch_range(f, 100 * (uint64_t)i, sizeof(buf), buf, 0) ==
		      0);
		CHECK(memcmp(buf, e->fdata + 100 * i, sizeof(buf)) == 0);
	}
	fetch_get_stats(f, &st);
	CHECK_EQ_U64(st.adoptions, 1);
	CHECK_EQ_U64(st.errors, 0);
	fetch_free(f);
	/* a new size is never adopted */
	f = open_fault(e, "/grow/adopt", 0, err, sizeof(err));
	CHECK(f != NULL);
	if (!f)
		return;
	fetch_adopt_validators(f, true);
	CHECK(fetch_range(f, 0, sizeof(buf), buf, 0) == -ESTALE);
	fetch_free(f);
}

static void changing_twice(struct env *e)
{
	char err[512];
	unsigned char buf[100];
	struct fetch *f = open_fault(e, "/changing/log", 0, err, sizeof(err));

	if (!f)
		return;
	fetch_range(f, 0, sizeof(buf), buf, 0);
	fetch_range(f, 100, sizeof(buf), buf, 0);
	fetch_free(f);
}

/* A 200 to the probe is fine when the whole artifact is one byte. */
static void test_tiny(struct env *e)
{
	char err[512];
	unsigned char b = 0;
	struct fetch *f = open_fault(e, "/tiny/a", 0, err, sizeof(err));

	CHECK(f != NULL);
	if (!f) {
		fprintf(stderr, "  /tiny/a: %s\n", err);
		return;
	}
	CHECK_EQ_U64(fetch_size(f), 1);
	CHECK(fetch_range(f, 0, 1, &b, 0) == 0);
	CHECK(b == e->fdata[0]);
	fetch_free(f);
}

static void test_faults(struct env *e)
{
	const char *once = "artifact changed on the server: ETag was \"v1\", "
			   "now \"v2\" (http://127.0.0.1:";
	const char *adopted = "/changing/adopt changed from \"v1\" to \"v2\"; "
			      "blocks are verified by digest, adopted";
	const char *norange =
	    "server ignores Range requests (answered 200 to a range request): "
	    "every read would download from byte 0: http://127.0.0.1:";
	char err[512], *log, *p;
	struct fetch *f;
	int n = 0;

	for (size_t i = 0; i < sizeof(fault_cases) / sizeof(fault_cases[0]);
	     i++)
		test_fault_case(e, &fault_cases[i]);
	f = open_fault(e, "/gone/a", 0, err, sizeof(err));
	CHECK(f == NULL && strstr(err, "HTTP 410 Gone: http://127.0.0.1:"));
	/* a server that ignores Range is refused at open, size known or not */
	f = open_fault(e, "/norange/a", 0, err, sizeof(err));
	CHECK(f == NULL && strstr(err, norange) && strstr(err, "/norange/a"));
	f = open_fault(e, "/nosize/a", 0, err, sizeof(err));
	CHECK(f == NULL && strstr(err, norange) && strstr(err, "/nosize/a"));
	test_tiny(e);
	log = capture_stderr(e, changing_twice);
	for (p = log; p && (p = strstr(p, once)) != NULL; p++)
		n++;
	CHECK_EQ_U64(n, 1);
	free(log);
	log = capture_stderr(e, adopt_changing);
	for (n = 0, p = log; p && (p = strstr(p, adopted)) != NULL; p++)
		n++;
	CHECK_EQ_U64(n, 1);
	CHECK(log && !strstr(log, "artifact changed on the server: ETag"));
	free(log);
}

/* ---- main --------------------------------------------------------------- */

int main(void)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || on_exit(cleanup, e) != 0 || make_tmp(e) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	e->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	if (getenv("SFFS_SEED"))
		e->seed = strtoull(getenv("SFFS_SEED"), NULL, 0);
	e->seed |= 1;
	printf("seed %llu, scratch %s\n", (unsigned long long)e->seed, e->tmp);
	e->data = random_bytes(DATA_SIZE, e->seed);
	e->fdata = random_bytes(FAULT_SIZE, e->seed + 2);
	CHECK(fetch_global_init() == 0);
	test_resolve();
	test_sibling();
	CHECK(e->data && e->fdata && start_nginx(e) == 0);
	CHECK(start_fault(e) == 0);
	if (check_fail)
		return check_done();
	test_errors(e);
	test_basic(e);
	test_pinned(e);
	test_redirect(e);
	test_tls(e);
	test_threads(e);
	test_stream(e);
	test_nocache(e);
	test_changed_nginx(e);
	test_adopt_nginx(e);
	test_faults(e);
	test_deadlines(e);
	test_local(e);
	fetch_global_cleanup();
	return check_done();
}
