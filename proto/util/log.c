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
#include "util.h"

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

size_t
term_escape(const char *in, size_t n, char *out, size_t cap, bool keep_lines)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (cap == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char) in[i];
		unsigned char c2 = i + 1 < n ? (unsigned char) in[i + 1] : 0;
		bool ctl = (c < 0x20 || c == 0x7f)
		    && !(keep_lines && (c == '\n' || c == '\t'));
		/* U+0080..U+009F (C1 controls, e.g. CSI) as UTF-8 */
		bool c1 = c == 0xc2 && c2 >= 0x80 && c2 <= 0x9f;
		if (ctl || c1) {
			if (o + 4 >= cap)
				break;
			if (c1)
				c = c2, i++;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
			continue;
		}
		if (o + 1 >= cap)
			break;
		out[o++] = (char) c;
	}
	out[o] = '\0';
	return o;
}

void
cli_printf(FILE *f, const char *fmt, ...)
{
	char small[1024], *buf = small, *clean;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n >= sizeof small) {
		buf = xmalloc((size_t) n + 1);
		va_start(ap, fmt);
		vsnprintf(buf, (size_t) n + 1, fmt, ap);
		va_end(ap);
	}
	clean = xmalloc((size_t) n * 4 + 1);
	fwrite(clean, 1,
	    term_escape(buf, (size_t) n, clean, (size_t) n * 4 + 1, true), f);
	free(clean);
	if (buf != small)
		free(buf);
}

void
log_msg(log_level lvl, const char *id, const char *fmt, ...)
{
	char line[2048], clean[2048];
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
	/*
	 * Text from branches (values in PostgreSQL's errors, names) must not
	 * drive the terminal or the journal viewer of whoever reads the log.
	 */
	n = term_escape(line, n, clean, sizeof clean - 1, false);
	clean[n++] = '\n';
	pthread_mutex_lock(&log_mtx);
	fwrite(clean, 1, n, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&log_mtx);
}

static void cli_vprint(const char *what, const char *fmt, va_list ap)
    BS_PRINTF(2, 0);

static void
cli_vprint(const char *what, const char *fmt, va_list ap)
{
	char msg[2048], clean[2048];

	vsnprintf(msg, sizeof msg, fmt, ap);
	term_escape(msg, strlen(msg), clean, sizeof clean, true);
	fprintf(stderr, "%s: %s: %s\n", log_prog, what, clean);
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
