/* SPDX-License-Identifier: MIT */
/*
 * test_bcmodules.c - the modulefiles of Spack buildcache packages
 * (catalog_bc_modulefile, catalog_module_env): the variable named after a
 * package, the text, the bounds, and hostile names, versions, prefixes and
 * URLs, which are compiled with luac and run under lua with stub Lmod
 * functions to see that every value comes out byte for byte, with and
 * without LD_LIBRARY_PATH (-o norelocate).
 */
#include "check.h"
#include "lua_run.h"
#include "../../catalog/catalog_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARG_MAX_ 65536 /* the generator's bound on each argument */

static void test_env(void)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
	    {"slurm", "SLURM_ROOT"},
	    {"py-numpy", "PY_NUMPY_ROOT"},
	    {"linux-pam-misc", "LINUX_PAM_MISC_ROOT"},
	    {"3proxy", "_3PROXY_ROOT"},
	    {"c++", "C___ROOT"},
	    {"a\"b\\c\nd", "A_B_C_D_ROOT"},
	    {"\xc3\xbc", "___ROOT"},
	    {"Zstd", "ZSTD_ROOT"},
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(catalog_module_env(cases[i].name, buf, sizeof(buf)) == 0);
		if (strcmp(buf, cases[i].want))
			fprintf(stderr, "env of \"%s\": %s\n", cases[i].name,
				buf);
		CHECK(!strcmp(buf, cases[i].want));
	}
	CHECK(catalog_module_env("", buf, sizeof(buf)) == -EINVAL);
	CHECK(catalog_module_env(NULL, buf, sizeof(buf)) == -EINVAL);
	/* "ab" + "_ROOT" + NUL: 8 bytes, 7 are too few (a digit first
	 * would need one more) */
	CHECK(catalog_module_env("ab", buf, 8) == 0 && !strcmp(buf, "AB_ROOT"));
	CHECK(catalog_module_env("ab", buf, 7) == -ENAMETOOLONG && !buf[0]);
	CHECK(catalog_module_env("1b", buf, 8) == -ENAMETOOLONG && !buf[0]);
	CHECK(catalog_module_env("1b", buf, 9) == 0 &&
	      !strcmp(buf, "_1B_ROOT"));
}

static void test_text(void)
{
	static const char *const lines[] = {
	    "whatis(\"Name: slurm\")\n",
	    "whatis(\"Version: 22.05\")\n",
	    "whatis(\"Hash: lssztiaaaaaaaaaaaaaaaaaaaaaaaaaa\")\n",
	    "whatis(\"Source: http://127.0.0.1/v3/blobs/sha256/ab/ab\")\n",
	    "\nhelp(\"slurm 22.05 (Spack hash ",
	    "\nlocal prefix = \"/sf/slurm-22.05-lssztia\"\n",
	    "\nlocal function present(d)\n",
	    "if mode() == \"spider\" then\n",
	    "if present(\"bin\") then\n"
	    "\tprepend_path(\"PATH\", pathJoin(prefix, \"bin\"))\nend\n",
	    "if present(\"sbin\") then\n"
	    "\tprepend_path(\"PATH\", pathJoin(prefix, \"sbin\"))\nend\n",
	    "prepend_path(\"MANPATH\", pathJoin(prefix, \"share/man\"))\n",
	    "prepend_path(\"PKG_CONFIG_PATH\", pathJoin(prefix, "
	    "\"lib/pkgconfig\"))\n",
	    "prepend_path(\"PKG_CONFIG_PATH\", pathJoin(prefix, "
	    "\"lib64/pkgconfig\"))\n",
	    "prepend_path(\"CMAKE_PREFIX_PATH\", prefix)\n",
	    "\nsetenv(\"SLURM_ROOT\", prefix)\n",
	};
	const char *hash = "lssztiaaaaaaaaaaaaaaaaaaaaaaaaaa";
	const char *url = "http://127.0.0.1/v3/blobs/sha256/ab/ab";
	char *m = catalog_bc_modulefile("slurm", "22.05", hash,
					"/sf/slurm-22.05-lssztia", url, false);
	size_t i;

	CHECK(m != NULL);
	for (i = 0; m && i < sizeof(lines) / sizeof(lines[0]); i++) {
		if (!strstr(m, lines[i]))
			fprintf(stderr, "modulefile lacks \"%s\"\n", lines[i]);
		CHECK(strstr(m, lines[i]) != NULL);
	}
	/* relocated RPATHs find the libraries; no artifact's conflict */
	CHECK(m && !strstr(m, "LD_LIBRARY_PATH\", pathJoin"));
	CHECK(m && !strstr(m, "conflict("));
	CHECK(m && strstr(m, "\"sbin\"))") < strstr(m, "\"bin\"))"));
	free(m);
	m = catalog_bc_modulefile("slurm", "22.05", hash, "/sf/x", url, true);
	CHECK(m && strstr(m, "if present(\"lib\") then\n\tprepend_path("
			     "\"LD_LIBRARY_PATH\", pathJoin(prefix, "
			     "\"lib\"))\nend\n"));
	CHECK(m && strstr(m, "prepend_path(\"LD_LIBRARY_PATH\", "
			     "pathJoin(prefix, \"lib64\"))\n"));
	free(m);
}

static void test_bounds(void)
{
	char *big = malloc(ARG_MAX_ + 2), *m;

	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, 'v', ARG_MAX_ + 1);
	big[ARG_MAX_ + 1] = '\0';
	errno = 0;
	CHECK(catalog_bc_modulefile("n", big, "h", "/p", "u", false) == NULL &&
	      errno == EINVAL);
	big[ARG_MAX_] = '\0';
	m = catalog_bc_modulefile("n", big, "h", "/p", "u", false);
	CHECK(m && strlen(m) > 2 * ARG_MAX_); /* whatis and help */
	free(m);
	/* a name as long as allowed names a variable that long too */
	m = catalog_bc_modulefile(big, "1", "h", "/p", "u", true);
	CHECK(m != NULL);
	free(m);
	big[0] = '/';
	m = catalog_bc_modulefile("n", "1", "h", big, "u", false);
	CHECK(m != NULL);
	free(m);
	free(big);

	errno = 0;
	CHECK(catalog_bc_modulefile("", "1", "h", "/p", "u", false) == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_bc_modulefile("n", "1", "h", "rel", "u", false) == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_bc_modulefile(NULL, "1", "h", "/p", "u", false) == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_bc_modulefile("n", NULL, "h", "/p", "u", false) == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_bc_modulefile("n", "1", NULL, "/p", "u", false) == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_bc_modulefile("n", "1", "h", NULL, "u", false) == NULL &&
	      errno == EINVAL);
	errno = 0;
	CHECK(catalog_bc_modulefile("n", "1", "h", "/p", NULL, false) == NULL &&
	      errno == EINVAL);
}

/* ---- hostile values through lua ---------------------------------------- */

/* Stub Lmod functions; runs the modulefile arg[1] in mode arg[2] with
 * every directory present (arg[3] "all") or none, then prints the
 * variables (arg[4]: the <NAME>_ROOT one) and what it said. Values are
 * printed with %q so that newlines stay on one line. */
static const char lua_driver[] =
    "local env, info = {}, {}\n"
    "local lmode, dirs = arg[2], arg[3]\n"
    "function whatis(s) info[#info + 1] = 'whatis=' .. s end\n"
    "function help(s) info[#info + 1] = 'help=' .. s end\n"
    "function mode() return lmode end\n"
    "function pathJoin(a, b) return a .. '/' .. b end\n"
    "function isDir(d) return dirs == 'all' end\n"
    "function prepend_path(k, v)\n"
    "  env[k] = env[k] and (v .. ':' .. env[k]) or v\n"
    "end\n"
    "function setenv(k, v) env[k] = v end\n"
    "dofile(arg[1])\n"
    "for _, k in ipairs({arg[4], 'PATH', 'MANPATH', 'PKG_CONFIG_PATH',\n"
    "                    'LD_LIBRARY_PATH', 'CMAKE_PREFIX_PATH'}) do\n"
    "  io.write(k, '=', env[k] and string.format('%q', env[k]) or\n"
    "           '(unset)', '\\n')\n"
    "end\n"
    "for _, s in ipairs(info) do io.write(string.format('%q', s), "
    "'\\n') end\n";

struct lua_env {
	char dir[4096];
	char mod[4200], driver[4200], out[4200];
	const char *lua, *luac;
};

/* What lua prints for s with %q, computed by lua itself from a file
 * holding s (so the test does not re-implement %q). */
static char *lua_q(const struct lua_env *e, const char *s)
{
	char cmd[16384], *out = malloc(65536);

	if (!out || !write_file(e->out, s))
		abort();
	snprintf(cmd, sizeof(cmd),
		 "'%s' -e \"local f = io.open('%s', 'rb') "
		 "io.write(string.format('%%q', f:read('*a')))\"",
		 e->lua, e->out);
	if (!run(cmd, out, 65536))
		abort();
	return out;
}

static void append(char **s, const char *a, const char *b, const char *c)
{
	size_t old = *s ? strlen(*s) : 0;
	char *p = realloc(*s, old + strlen(a) + strlen(b) + strlen(c) + 1);

	if (!p)
		abort();
	p[old] = '\0';
	strcat(strcat(strcat(p, a), b), c);
	*s = p;
}

/* k=%q(v)\n, or with k NULL %q(v)\n */
static void add_var(const struct lua_env *e, char **s, const char *k,
		    const char *v)
{
	char *q = v ? lua_q(e, v) : NULL;

	append(s, k ? k : "", k ? "=" : "", q ? q : "(unset)");
	append(s, "\n", "", "");
	free(q);
}

/* What the driver prints for a package of these values (up to help). */
static char *expected(const struct lua_env *e, const char *name,
		      const char *version, const char *hash, const char *prefix,
		      const char *url, bool dirs, bool libpath)
{
	char *s = NULL, *v = NULL, *env = malloc(ARG_MAX_ + 8);

	if (!env || catalog_module_env(name, env, ARG_MAX_ + 8))
		abort();
	add_var(e, &s, env, prefix);
	free(env);
	append(&v, prefix, "/bin:", prefix);
	append(&v, "/sbin", "", "");
	add_var(e, &s, "PATH", dirs ? v : NULL);
	free(v), v = NULL;
	append(&v, prefix, "/share/man", "");
	add_var(e, &s, "MANPATH", dirs ? v : NULL);
	free(v), v = NULL;
	append(&v, prefix, "/lib/pkgconfig:", prefix);
	append(&v, "/lib64/pkgconfig", "", "");
	add_var(e, &s, "PKG_CONFIG_PATH", dirs ? v : NULL);
	free(v), v = NULL;
	append(&v, prefix, "/lib:", prefix);
	append(&v, "/lib64", "", "");
	add_var(e, &s, "LD_LIBRARY_PATH", dirs && libpath ? v : NULL);
	free(v), v = NULL;
	add_var(e, &s, "CMAKE_PREFIX_PATH", prefix);
	append(&v, "whatis=Name: ", name, "");
	add_var(e, &s, NULL, v);
	free(v), v = NULL;
	append(&v, "whatis=Version: ", version, "");
	add_var(e, &s, NULL, v);
	free(v), v = NULL;
	append(&v, "whatis=Hash: ", hash, "");
	add_var(e, &s, NULL, v);
	free(v), v = NULL;
	append(&v, "whatis=Source: ", url, "");
	add_var(e, &s, NULL, v);
	free(v);
	return s;
}

static void check_run(const struct lua_env *e, const char *mode, bool dirs,
		      bool libpath, const char *name, const char *version,
		      const char *hash, const char *prefix, const char *url)
{
	static char out[1 << 20];
	char cmd[16384], env[256], *want;
	bool ok;

	if (catalog_module_env(name, env, sizeof(env)))
		abort();
	snprintf(cmd, sizeof(cmd), "'%s' '%s' '%s' '%s' %s '%s'", e->lua,
		 e->driver, e->mod, mode, dirs ? "all" : "none", env);
	ok = run(cmd, out, sizeof(out));
	CHECK(ok);
	want = expected(e, name, version, hash, prefix, url,
			dirs || !strcmp(mode, "spider"), libpath);
	ok = !strncmp(out, want, strlen(want));
	if (!ok)
		fprintf(stderr,
			"lua printed:\n%s\nwanted it to start with:\n%s\n", out,
			want);
	CHECK(ok);
	free(want);
}

static void check_module(const struct lua_env *e, const char *name,
			 const char *version, const char *hash,
			 const char *prefix, const char *url, bool libpath)
{
	char *m =
	    catalog_bc_modulefile(name, version, hash, prefix, url, libpath);
	char cmd[16384], out[4096];

	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(write_file(e->mod, m));
	snprintf(cmd, sizeof(cmd), "'%s' -p '%s' 2>&1", e->luac, e->mod);
	if (!run(cmd, out, sizeof(out))) {
		fprintf(stderr, "luac -p: %s\nin:\n%s\n", out, m);
		CHECK(false);
	}
	check_run(e, "load", true, libpath, name, version, hash, prefix, url);
	check_run(e, "load", false, libpath, name, version, hash, prefix, url);
	check_run(e, "spider", false, libpath, name, version, hash, prefix,
		  url);
	free(m);
}

static void test_lua(void)
{
	static const struct {
		const char *name, *version, *prefix, *url;
	} cases[] = {
	    {"slurm", "22.05", "/sf/slurm-22.05-lssztia",
	     "http://127.0.0.1/v3/blobs/sha256/ab/abcd"},
	    {"py-numpy", "1.26.4", "/x]]..os.exit(3)..[[",
	     "https://h/\")os.exit(6)--"},
	    {"a\")os.exit(7)--", "1\"]]\n--", "/nl\n]] os.exit(5) --[[\r\n\t",
	     "s3://b/k?X-Amz-Signature=a%2Fb&x=]]\n]=]"},
	    {"\xc3\xbc\xff\x80", "\\012\\0123", "/\xc3\xbc\xff/dir with spaces",
	     "u"},
	    {"3proxy", "0.9.4", "/a\\", "/ends]="},
	};
	struct lua_env e;
	char cmd[8300];
	size_t i;

	if (!lua_setup("test_bcmodules", &e.lua, &e.luac, e.dir,
		       sizeof(e.dir))) {
		CHECK(!"lua, luac and a directory to run them in");
		return;
	}
	snprintf(e.mod, sizeof(e.mod), "%s/pkg.lua", e.dir);
	snprintf(e.driver, sizeof(e.driver), "%s/driver.lua", e.dir);
	snprintf(e.out, sizeof(e.out), "%s/value", e.dir);
	CHECK(write_file(e.driver, lua_driver));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_module(&e, cases[i].name, cases[i].version,
			     "lssztiaaaaaaaaaaaaaaaaaaaaaaaaaa",
			     cases[i].prefix, cases[i].url, false);
		check_module(&e, cases[i].name, cases[i].version, "h\"]]",
			     cases[i].prefix, cases[i].url, true);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e.dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	test_env();
	test_text();
	test_bounds();
	test_lua();
	return check_done();
}
