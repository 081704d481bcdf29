/* log: key=value lines to stderr or syslog; see log.h. */
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/pid.h"

#define LOG_LINE_MAX 2048

static int log_syslog;
static int log_worker = -1;
static enum log_level log_min = LOG_LVL_INFO;

/* The line's "YYYY-MM-DDTHH:MM:SS", formatted once per second and thread, not per line. */
static _Thread_local time_t stamp_sec = -1;
static _Thread_local char stamp[32];

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const int syslog_prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

void log_init(const char *ident, int use_syslog, enum log_level min_level)
{
	log_syslog = use_syslog;
	log_min = min_level;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_worker(int worker)
{
	log_worker = worker;
}

static void log_emit(enum log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void log_emit(enum log_level lvl, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	int n = 0;

	if (!log_syslog) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		if (ts.tv_sec != stamp_sec) {
			gmtime_r(&ts.tv_sec, &tm);
			if (strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
				stamp[0] = '\0';
			stamp_sec = ts.tv_sec;
		}
		n = snprintf(line, sizeof(line), "%s.%03ldZ mxgate[%d] ", stamp,
			     ts.tv_nsec / 1000000, (int)pid_self());
	}
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s ", level_names[lvl]);
	if (log_worker >= 0)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "worker=%d ", log_worker);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (log_syslog) {
		syslog(syslog_prio[lvl], "%s", line);
		return;
	}
	/* One write per line so lines of concurrent workers never interleave. */
	size_t len = strnlen(line, sizeof(line) - 2);
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_emit(lvl, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

char *log_escape(char *dst, size_t dstsz, const char *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=') {
			dst[o++] = (char)c;
			continue;
		}
		dst[o++] = '\\';
		dst[o++] = 'x';
		dst[o++] = hex[c >> 4];
		dst[o++] = hex[c & 15];
	}
	if (dstsz > 0)
		dst[o < dstsz ? o : dstsz - 1] = '\0';
	return dst;
}
