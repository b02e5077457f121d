/* log.c: structured one-line logging to stderr, journald-aware. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "platform.h"

static const char *log_prog = "branchsync";
static log_level log_max = LOG_LVL_INFO;
static bool log_journal;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_words[8] = {
    "EMERG",
    "ALERT",
    "CRIT",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "DEBUG",
};

void
log_init(const char *prog, log_level max)
{
	log_prog = prog;
	log_max = max;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(log_level max)
{
	log_max = max;
}

bool
log_enabled(log_level lvl)
{
	return lvl <= log_max;
}

void
log_msg(log_level lvl, const char *id, const char *fmt, ...)
{
	char line[2048];
	size_t n = 0;
	va_list ap;

	if (!log_enabled(lvl))
		return;
	if (log_journal) {
		n = (size_t) snprintf(line, sizeof line, "<%d>", (int) lvl);
	} else {
		int64_t ms = plat_wall_ms();
		struct tm tm;
		plat_gmtime(ms / 1000, &tm);
		n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t) snprintf(line + n, sizeof line - n, ".%03dZ %s ",
		    (int) (ms % 1000), level_words[lvl & 7]);
	}
	if (id != NULL && n < sizeof line)
		n += (size_t) snprintf(line + n, sizeof line - n, "%s ", id);
	if (n < sizeof line) {
		va_start(ap, fmt);
		n += (size_t) vsnprintf(line + n, sizeof line - n, fmt, ap);
		va_end(ap);
	}
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	/* Messages from libraries often end in a newline: keep one line. */
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	pthread_mutex_lock(&log_mtx);
	fwrite(line, 1, n, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mtx);
}

static void cli_vprint(const char *what, const char *fmt, va_list ap)
    BS_PRINTF(2, 0);

static void
cli_vprint(const char *what, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s: ", log_prog, what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vprint("error", fmt, ap);
	va_end(ap);
}

void
cli_hint(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vprint("hint", fmt, ap);
	va_end(ap);
}

void
cli_fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vprint("error", fmt, ap);
	va_end(ap);
	exit(1);
}

bool
log_level_parse(const char *s, log_level *out)
{
	static const struct {
		const char *name; /* as written in a config file */
		log_level lvl;    /* its level */
	} levels[] = {
	    {"error", LOG_LVL_ERROR},
	    {"warning", LOG_LVL_WARN},
	    {"notice", LOG_LVL_NOTICE},
	    {"info", LOG_LVL_INFO},
	    {"debug", LOG_LVL_DEBUG},
	};

	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
		if (!strcasecmp(s, levels[i].name)) {
			*out = levels[i].lvl;
			return true;
		}
	return false;
}

const char *
log_who(char *buf, size_t n, const char *branch, const char *till)
{
	if (till != NULL)
		snprintf(buf, n, "branch=%.64s till=%.64s", branch, till);
	else
		snprintf(buf, n, "branch=%.64s", branch);
	return buf;
}
