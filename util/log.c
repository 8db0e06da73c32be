/* SPDX-License-Identifier: MIT */
#include "sffs/log.h"
#include "sffs/util.h"

#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static enum log_level max_level = LOG_LVL_INFO;
static bool use_syslog;

void log_set_level(enum log_level lvl)
{
	max_level = lvl;
}

bool log_enabled(enum log_level lvl)
{
	return lvl <= max_level;
}

void log_to_syslog(void)
{
	openlog("sffs", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = {"error: ", "warning: ", "",
					    "debug: "};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char buf[1024], shown[1024], line[1024];
	va_list ap;
	int n;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* whatever a caller passed: no URL's secret, no raw control bytes
	 * of a hostile name, one line */
	util_escape(util_text_redact(buf, shown, sizeof(shown)), line,
		    sizeof(line));
	if (use_syslog)
		syslog(prio[lvl], "%s%s", names[lvl], line);
	else
		dprintf(STDERR_FILENO, "sffs: %s%s\n", names[lvl], line);
}
