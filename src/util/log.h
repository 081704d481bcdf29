/* log: key=value log lines to stderr or syslog.
 *
 * Every line is "LEVEL key=value ..." with the session or queue id first where there is one.
 * Bytes that came from a client must go through log_escape() before they reach a format. */
#ifndef MXG_LOG_H
#define MXG_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* Selects the destination: syslog when use_syslog, else stderr. ident names the program. */
void log_init(const char *ident, int use_syslog, enum log_level min_level);
/* Tags every later line with "worker=N" (N >= 0) so lines of different workers can be told apart. */
void log_set_worker(int worker);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)

/* Prints the message and exits with status 1: bad configuration or environment at start. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Copies at most len bytes of src into dst (size dstsz, always NUL-terminated), replacing
 * control bytes, '"', '\\', '=' and non-ASCII with \xNN so a client cannot forge log lines
 * or fields; spaces stay, so callers quote values that may hold them. Returns dst. */
char *log_escape(char *dst, size_t dstsz, const char *src, size_t len);

#endif
