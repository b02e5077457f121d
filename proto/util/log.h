/*
 * log.h: one line per event to stderr, or to a file that rotates by size.
 *
 * Under systemd (JOURNAL_STREAM set) each line on stderr starts with a <N>
 * priority prefix and has no timestamp, since the journal adds one.
 * Otherwise, and always in a log file, a line is
 * "2026-11-22T10:00:00.123Z LEVEL ID message". ID is a stable word such
 * as "HUB-APPLY-FAIL" that operators can grep and alert on.
 *
 * A log file (log_file_open) is for a service with no stderr worth the
 * name (Windows). Before a line would take it past its size limit, it is
 * rotated: with keep = 3,
 *
 *   agent.log.2 -> agent.log.3   (the old agent.log.3 is removed)
 *   agent.log.1 -> agent.log.2
 *   agent.log   -> agent.log.1
 *   agent.log      new, empty
 *
 * so the files hold whole lines and at most (keep + 1) * max_bytes in all.
 */
#ifndef BS_LOG_H
#define BS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>

#include "proto/compiler.h"

typedef enum {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
} log_level;

/*
 * log_level_parse maps "error", "warning", "notice", "info" or "debug",
 * in any case, to *out. Returns false (and leaves *out) for anything else.
 * Both daemons' log_level keys go through it.
 */
bool log_level_parse(const char *s, log_level *out);

/*
 * log_who writes into buf (n bytes) how a line names a branch, the same in
 * every line about one: "branch=CODE", or "branch=CODE till=TILL" (till
 * may be NULL). The code is the one the credential proved, never the
 * numeric id alone. Returns buf. LOG_WHO_MAX fits two 64-byte names.
 */
#define LOG_WHO_MAX 150
const char *log_who(char *buf, size_t n, const char *branch, const char *till);

/* log_init sets the program name and the most verbose level printed. */
void log_init(const char *prog, log_level max);
void log_set_level(log_level max);
bool log_enabled(log_level lvl);

/*
 * log_file_open sends the lines of every thread to the file at path
 * (appended to; created if missing) instead of stderr, rotating it as
 * above before it would pass max_bytes (at least LOG_FILE_MIN_BYTES),
 * keeping keep old files (0..9). A file open before is closed. Returns
 * false, with "could not open log file ..." in err, if path cannot be
 * opened for appending; the lines then go where they went before.
 *
 * When a rotation cannot rename a file (on Windows, another program has
 * it open), the lines go on into the current file until the next
 * rotation; when the new file cannot be opened, to stderr until it can.
 */
#define LOG_FILE_MIN_BYTES 4096
bool log_file_open(const char *path, int64_t max_bytes, int keep, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/* log_file_close closes the log file; lines go to stderr again. */
void log_file_close(void);

/* log_msg prints one line; id may be NULL. Thread-safe. */
void log_msg(log_level lvl, const char *id, const char *fmt, ...)
    BS_PRINTF(3, 4);

#define log_error(id, ...)  log_msg(LOG_LVL_ERROR, id, __VA_ARGS__)
#define log_warn(id, ...)   log_msg(LOG_LVL_WARN, id, __VA_ARGS__)
#define log_notice(id, ...) log_msg(LOG_LVL_NOTICE, id, __VA_ARGS__)
#define log_info(id, ...)   log_msg(LOG_LVL_INFO, id, __VA_ARGS__)
#define log_debug(id, ...)                                                    \
	do {                                                                  \
		if (log_enabled(LOG_LVL_DEBUG))                               \
			log_msg(LOG_LVL_DEBUG, id, __VA_ARGS__);              \
	} while (0)

/*
 * CLI-style messages, for commands run by a person: "prog: error: ...",
 * "prog: warning: ...", "prog: hint: ...". cli_fatal prints and exits 1.
 */
/*
 * A log line that a peer can cause, limited to max lines per window_ms:
 * the lines past that are counted, and the count is logged as one line
 * when the next line of the kind comes after the window. Declare one per
 * kind of line with LOG_LIMIT_INIT; log_limited is thread-safe.
 */
typedef struct {
	pthread_mutex_t mu; /* guards the three below */
	int64_t window_ms;  /* start of the current window */
	int64_t logged;     /* lines logged in it */
	int64_t hidden;     /* lines counted, not logged, in it */
	int max;            /* lines per window */
	int64_t every_ms;   /* the window's length */
} log_limit;

#define LOG_LIMIT_INIT(max, every_ms)                                         \
	{                                                                     \
		PTHREAD_MUTEX_INITIALIZER, INT64_MIN / 2, 0, 0, (max),        \
		    (every_ms)                                                \
	}

/* The limit of the lines that branches or peers cause, by default. */
#define LOG_LIMIT_DEFAULT LOG_LIMIT_INIT(20, 60000)

void log_limited(log_limit *l, log_level lvl, const char *id, const char *fmt,
    ...) BS_PRINTF(4, 5);

/*
 * term_escape copies the n bytes of in to out (cap bytes, NUL-ended),
 * writing control characters (C0, DEL, and C1 in UTF-8) as \xNN so that
 * text from a branch cannot move an operator's cursor, ring the bell or
 * rewrite a line; with keep_lines, newlines and tabs stay. Stops early
 * when out is full. Returns the length written.
 */
size_t term_escape(
    const char *in, size_t n, char *out, size_t cap, bool keep_lines);

/*
 * cli_printf is fprintf for command output a terminal shows: the text is
 * written through term_escape (newlines and tabs stay).
 */
void cli_printf(FILE *f, const char *fmt, ...) BS_PRINTF(2, 3);

void cli_error(const char *fmt, ...) BS_PRINTF(1, 2);
void cli_warning(const char *fmt, ...) BS_PRINTF(1, 2);
void cli_hint(const char *fmt, ...) BS_PRINTF(1, 2);
void cli_fatal(const char *fmt, ...) BS_PRINTF(1, 2) __attribute__((noreturn));

#endif /* BS_LOG_H */
