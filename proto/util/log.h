/*
 * log.h: one line per event to stderr.
 *
 * Under systemd (JOURNAL_STREAM set) each line starts with a <N> priority
 * prefix and has no timestamp, since the journal adds one. Otherwise a line
 * is "2026-11-22T10:00:00.123Z LEVEL ID message". ID is a stable word
 * such as "HUB-APPLY-FAIL" that operators can grep and alert on.
 */
#ifndef BS_LOG_H
#define BS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

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
 * "prog: hint: ...". cli_fatal prints and exits 1.
 */
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
void cli_hint(const char *fmt, ...) BS_PRINTF(1, 2);
void cli_fatal(const char *fmt, ...) BS_PRINTF(1, 2) __attribute__((noreturn));

#endif /* BS_LOG_H */
