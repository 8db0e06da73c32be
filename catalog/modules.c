/* SPDX-License-Identifier: MIT */
/*
 * modules.c - the Lmod modulefile (Lua) for one mounted artifact.
 *
 * Every value (version, paths, URL) reaches the Lua text only inside a
 * quoted literal in which anything but printable ASCII, '"' and '\' is
 * written as a \ddd escape, so no value can end the string early, start a
 * comment or a long bracket, or change a byte on the way (a long bracket
 * would turn "\r\n" into "\n"). Values never go into comments.
 */
#include "catalog_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Longest argument accepted: paths and URLs, presigned ones included. */
#define MODULE_ARG_MAX 65536

/* A growing text; oom stays set after the first failed allocation, so
 * callers check once at the end. */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

static void add(struct text *t, const char *s, size_t n)
{
	size_t cap;
	char *np;

	if (t->oom)
		return;
	if (n >= t->cap - t->len) {
		cap = t->cap ? t->cap : 4096;
		while (cap - t->len <= n)
			cap *= 2;
		np = realloc(t->p, cap);
		if (!np) {
			t->oom = true;
			return;
		}
		t->p = np;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void puts_(struct text *t, const char *s)
{
	add(t, s, strlen(s));
}

/* The bytes as a Lua quoted literal, quotes included. */
static void lua_quoted(struct text *t, const char *s, size_t n)
{
	const unsigned char *c = (const unsigned char *)s;
	char esc[5];
	size_t i;

	add(t, "\"", 1);
	for (i = 0; i < n; i++) {
		if (c[i] >= 0x20 && c[i] < 0x7f && c[i] != '"' &&
		    c[i] != '\\') {
			add(t, (const char *)c + i, 1);
			continue;
		}
		if (c[i] == '\n') {
			add(t, "\\n", 2);
			continue;
		}
		/* Always three digits, so a digit after it is not taken in. */
		esc[0] = '\\';
		esc[1] = (char)('0' + c[i] / 100);
		esc[2] = (char)('0' + c[i] / 10 % 10);
		esc[3] = (char)('0' + c[i] % 10);
		add(t, esc, 4);
	}
	add(t, "\"", 1);
}

/* Writes fn(<s as one quoted literal>) and frees s. */
static void call_text(struct text *t, const char *fn, struct text *s)
{
	puts_(t, fn);
	puts_(t, "(");
	if (s->oom)
		t->oom = true;
	else
		lua_quoted(t, s->p, s->len);
	puts_(t, ")\n");
	free(s->p);
}

/* Writes fn("label" .. value) as one literal: fn("Label: value"). */
static void call_str(struct text *t, const char *fn, const char *label,
		     const char *value)
{
	struct text s = {0};

	puts_(&s, label);
	puts_(&s, value);
	call_text(t, fn, &s);
}

static void add_help(struct text *t, const char *version, const char *toolchain,
		     const char *arch, const char *root, const char *url)
{
	struct text s = {0};

	puts_(&s, "Slurm ");
	puts_(&s, version);
	puts_(&s, " built for ");
	puts_(&s, toolchain);
	if (arch) {
		puts_(&s, " (");
		puts_(&s, arch);
		puts_(&s, ")");
	}
	puts_(&s, ", from a Slurm Factory tarball mounted read-only by sffs\n"
		  "at ");
	puts_(&s, root);
	puts_(&s, "\nfrom ");
	puts_(&s, url);
	puts_(&s, "\n\nSets PATH, LD_LIBRARY_PATH and MANPATH (for the "
		  "directories present),\nSLURM_INSTALL_PREFIX and "
		  "SLURM_ROOT.\n");
	call_text(t, "help", &s);
}

/* The directories each variable gets, in prepend order: the last one
 * prepended ends up first. */
static const struct {
	const char *var, *dir;
} paths[] = {
    {"PATH", "sbin"},
    {"PATH", "bin"},
    {"LD_LIBRARY_PATH", "lib/slurm"},
    {"LD_LIBRARY_PATH", "lib64"},
    {"LD_LIBRARY_PATH", "lib"},
    {"MANPATH", "share/man"},
};

/* After "local prefix = ...": the function that says whether the
 * directory d of prefix is there (what: "the view", "the package"). */
static void add_present(struct text *t, const char *what)
{
	puts_(t, "\n\n"
		 "-- Whether ");
	puts_(t, what);
	puts_(t, " has directory d. While Lmod only lists\n"
		 "-- modules (spider) nothing is looked at: the mount may be\n"
		 "-- slow or absent then.\n"
		 "local function present(d)\n"
		 "\tif mode() == \"spider\" then\n"
		 "\t\treturn true\n"
		 "\tend\n"
		 "\treturn isDir(pathJoin(prefix, d))\n"
		 "end\n\n");
}

/* var and dir are constants of this file, never values. */
static void add_prepend(struct text *t, const char *var, const char *dir)
{
	puts_(t, "if present(\"");
	puts_(t, dir);
	puts_(t, "\") then\n\tprepend_path(\"");
	puts_(t, var);
	puts_(t, "\", pathJoin(prefix, \"");
	puts_(t, dir);
	puts_(t, "\"))\nend\n");
}

static void add_body(struct text *t, const char *root)
{
	struct text prefix = {0};
	size_t i;

	puts_(&prefix, root);
	puts_(&prefix, "/view");
	puts_(t, "\nconflict(\"slurm\")\n\nlocal prefix = ");
	if (prefix.oom)
		t->oom = true;
	else
		lua_quoted(t, prefix.p, prefix.len);
	free(prefix.p);
	add_present(t, "the view");
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		add_prepend(t, paths[i].var, paths[i].dir);
	puts_(t, "\nsetenv(\"SLURM_INSTALL_PREFIX\", prefix)\n"
		 "setenv(\"SLURM_ROOT\", prefix)\n");
}

static bool arg_ok(const char *s, bool required)
{
	if (!s)
		return !required;
	return strnlen(s, MODULE_ARG_MAX + 1) <= MODULE_ARG_MAX;
}

char *catalog_modulefile(const char *version, const char *toolchain,
			 const char *arch, const char *root, const char *url)
{
	struct text t = {0};

	if (!arg_ok(version, true) || !arg_ok(toolchain, true) ||
	    !arg_ok(arch, false) || !arg_ok(root, true) || !arg_ok(url, true) ||
	    root[0] != '/') {
		errno = EINVAL;
		return NULL;
	}
	puts_(&t, "-- -*- lua -*-\n"
		  "-- Generated by sffs for a mounted Slurm Factory "
		  "tarball.\n\n");
	call_str(&t, "whatis", "Name: ", "slurm");
	call_str(&t, "whatis", "Version: ", version);
	call_str(&t, "whatis", "Toolchain: ", toolchain);
	if (arch)
		call_str(&t, "whatis", "Arch: ", arch);
	call_str(&t, "whatis", "Source: ", url);
	add_help(&t, version, toolchain, arch, root, url);
	add_body(&t, root);
	if (t.oom) {
		free(t.p);
		errno = ENOMEM;
		return NULL;
	}
	return t.p;
}

/* ---- a Spack buildcache package ------------------------------------- */

/* As paths[]: a package's directories, in prepend order. */
static const struct {
	const char *var, *dir;
	bool libpath; /* only when the mount does not relocate */
} pkg_paths[] = {
    {"PATH", "sbin", false},
    {"PATH", "bin", false},
    {"MANPATH", "share/man", false},
    {"PKG_CONFIG_PATH", "lib64/pkgconfig", false},
    {"PKG_CONFIG_PATH", "lib/pkgconfig", false},
    {"LD_LIBRARY_PATH", "lib64", true},
    {"LD_LIBRARY_PATH", "lib", true},
};

int catalog_module_env(const char *name, char *buf, size_t len)
{
	size_t n, i, k = 0, digit;
	char c;

	if (!name || !name[0] || !buf)
		return -EINVAL;
	n = strnlen(name, MODULE_ARG_MAX + 1);
	digit = name[0] >= '0' && name[0] <= '9';
	/* a leading '_' before a digit, the name, "_ROOT" and the NUL */
	if (n > MODULE_ARG_MAX || n + digit + 6 > len) {
		if (len)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (digit)
		buf[k++] = '_';
	for (i = 0; i < n; i++) {
		c = name[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9'))
			c = '_';
		buf[k++] = c;
	}
	memcpy(buf + k, "_ROOT", 6);
	return 0;
}

static void add_pkg_help(struct text *t, const char *name, const char *version,
			 const char *hash, const char *prefix, const char *url,
			 const char *env, bool libpath)
{
	struct text s = {0};

	puts_(&s, name);
	puts_(&s, " ");
	puts_(&s, version);
	puts_(&s, " (Spack hash ");
	puts_(&s, hash);
	puts_(&s, "), from a Spack buildcache mounted read-only by sffs\nat ");
	puts_(&s, prefix);
	puts_(&s, "\nfrom ");
	puts_(&s, url);
	puts_(&s, "\n\nSets PATH, MANPATH, PKG_CONFIG_PATH");
	puts_(&s, libpath ? ", LD_LIBRARY_PATH" : "");
	puts_(&s, " (for the directories present),\nCMAKE_PREFIX_PATH and ");
	puts_(&s, env);
	puts_(&s, libpath ? ".\nThe mount does not relocate: LD_LIBRARY_PATH "
			    "finds the libraries.\n"
			  : ".\nThe mount relocates the package: its RPATHs "
			    "find the libraries.\n");
	call_text(t, "help", &s);
}

static void add_pkg_body(struct text *t, const char *prefix, const char *env,
			 bool libpath)
{
	size_t i;

	puts_(t, "\nlocal prefix = ");
	lua_quoted(t, prefix, strlen(prefix));
	add_present(t, "the package");
	for (i = 0; i < sizeof(pkg_paths) / sizeof(pkg_paths[0]); i++)
		if (libpath || !pkg_paths[i].libpath)
			add_prepend(t, pkg_paths[i].var, pkg_paths[i].dir);
	puts_(t, "prepend_path(\"CMAKE_PREFIX_PATH\", prefix)\n\nsetenv(");
	lua_quoted(t, env, strlen(env));
	puts_(t, ", prefix)\n");
}

char *catalog_bc_modulefile(const char *name, const char *version,
			    const char *hash, const char *prefix,
			    const char *url, bool libpath)
{
	struct text t = {0};
	char env[MODULE_ARG_MAX + 8];

	if (!arg_ok(name, true) || !arg_ok(version, true) ||
	    !arg_ok(hash, true) || !arg_ok(prefix, true) ||
	    !arg_ok(url, true) || prefix[0] != '/' ||
	    catalog_module_env(name, env, sizeof(env))) {
		errno = EINVAL;
		return NULL;
	}
	puts_(&t, "-- -*- lua -*-\n"
		  "-- Generated by sffs for a package of a mounted Spack "
		  "buildcache.\n\n");
	call_str(&t, "whatis", "Name: ", name);
	call_str(&t, "whatis", "Version: ", version);
	call_str(&t, "whatis", "Hash: ", hash);
	call_str(&t, "whatis", "Source: ", url);
	add_pkg_help(&t, name, version, hash, prefix, url, env, libpath);
	add_pkg_body(&t, prefix, env, libpath);
	if (t.oom) {
		free(t.p);
		errno = ENOMEM;
		return NULL;
	}
	return t.p;
}
