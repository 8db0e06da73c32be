/* SPDX-License-Identifier: MIT */
/*
 * log.h - the one place sffs prints diagnostics.
 *
 * Before the daemon detaches, messages go to stderr prefixed "sffs: ".
 * After log_to_syslog() they go to syslog(3) as well (stderr is /dev/null
 * then). Thread safe: each message is written with one write(2)/syslog call.
 */
#ifndef SFFS_LOG_H
#define SFFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Messages above this level are dropped. Default LOG_LVL_INFO. Not thread
 * safe: set it before starting threads. */
void log_set_level(enum log_level lvl);
bool log_enabled(enum log_level lvl);
/* Switch to syslog (daemon mode). Call once, before threads start. */
void log_to_syslog(void);

void log_msg(enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
	do {                                                                   \
		if (log_enabled(LOG_LVL_DEBUG))                                \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                   \
	} while (0)

#endif
