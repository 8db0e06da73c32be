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
	puts_(t, "\n\n"
		 "-- Whether the view has directory d. While Lmod only lists\n"
		 "-- modules (spider) nothing is looked at: the mount may be\n"
		 "-- slow or absent then.\n"
		 "local function present(d)\n"
		 "\tif mode() == \"spider\" then\n"
		 "\t\treturn true\n"
		 "\tend\n"
		 "\treturn isDir(pathJoin(prefix, d))\n"
		 "end\n\n");
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		puts_(t, "if present(\"");
		puts_(t, paths[i].dir);
		puts_(t, "\") then\n\tprepend_path(\"");
		puts_(t, paths[i].var);
		puts_(t, "\", pathJoin(prefix, \"");
		puts_(t, paths[i].dir);
		puts_(t, "\"))\nend\n");
	}
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
