/* SPDX-License-Identifier: MIT */
/*
 * lua_run.h - what the modulefile tests share to run a generated
 * modulefile under a real Lua with stub Lmod functions: finding lua and
 * luac, writing a file, running a command for its output.
 */
#ifndef SFFS_TEST_LUA_RUN_H
#define SFFS_TEST_LUA_RUN_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const lua_names[] = {
    "/usr/bin/lua5.4", "/usr/bin/lua5.3",    "/usr/bin/lua", "/usr/bin/lua5.2",
    "/usr/bin/lua5.1", "/usr/local/bin/lua", NULL,
};
static const char *const luac_names[] = {
    "/usr/bin/luac5.4",
    "/usr/bin/luac5.3",
    "/usr/bin/luac",
    "/usr/bin/luac5.2",
    "/usr/bin/luac5.1",
    "/usr/local/bin/luac",
    NULL,
};

static const char *find_exe(const char *const *names)
{
	for (; *names; names++)
		if (access(*names, X_OK) == 0)
			return *names;
	return NULL;
}

static bool write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	bool ok;

	if (!f)
		return false;
	ok = fwrite(text, 1, strlen(text), f) == strlen(text);
	return fclose(f) == 0 && ok;
}

/* Runs cmd; its stdout (at most cap - 1 bytes) into out. true when it
 * exited 0. */
static bool run(const char *cmd, char *out, size_t cap)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0, k;
	int st;

	if (!p)
		return false;
	while (n + 1 < cap && (k = fread(out + n, 1, cap - 1 - n, p)) > 0)
		n += k;
	out[n] = '\0';
	st = pclose(p);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Finds lua and luac (Lmod needs Lua, and Lmod is a dependency: none is a
 * failure) and makes a fresh directory under SFFS_TEST_TMP named after
 * the test in dir. true when all three are there. */
static bool lua_setup(const char *test, const char **lua, const char **luac,
		      char *dir, size_t dirlen)
{
	const char *base = getenv("SFFS_TEST_TMP");
	char cmd[4200];

	*lua = find_exe(lua_names);
	*luac = find_exe(luac_names);
	if (!*lua || !*luac) {
		fprintf(stderr, "no lua or luac (install lmod / lua5.3)\n");
		return false;
	}
	if (!base || !*base)
		base = "/tmp";
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", base);
	if (system(cmd) != 0)
		return false;
	snprintf(dir, dirlen, "%s/%s.XXXXXX", base, test);
	return mkdtemp(dir) != NULL;
}

#endif
