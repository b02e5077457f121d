/*
 * log.c: structured one-line logging to stderr, journald-aware, or to a
 * log file rotated by size with ISO C's rename and remove only.
 */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "platform.h"
#include "util.h"

#define LOG_PATH_MAX 1024

static const char *log_prog = "branchsync";
static log_level log_max = LOG_LVL_INFO;
static bool log_journal;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

/* The log file, all under log_mtx; log_path[0] == '\0' means stderr. */
static char log_path[LOG_PATH_MAX]; /* the file's name */
static FILE *log_fp;                /* open on log_path, or NULL: stderr */
static int64_t log_size;            /* bytes in log_fp */
static int64_t log_max_bytes;       /* rotate before passing this */
static int log_keep;                /* old files: log_path.1 .. .log_keep */
static int64_t log_retry_ms;        /* log_fp NULL: next try to reopen */
static atomic_bool log_to_file;     /* log_path[0] != '\0', read unlocked */

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

/*
 * log_open_append opens path for appending in binary mode (the sizes are
 * byte counts; no \r\n on Windows) and, if it opened, sets log_size.
 * Under log_mtx.
 */
static FILE *
log_open_append(const char *path)
{
	FILE *f = fopen(path, "ab");
	long end;

	if (f == NULL)
		return NULL;
	/* Where "a" starts is up to the C library: ask for the end. */
	if (fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= 0)
		log_size = end;
	else
		log_size = 0;
	return f;
}

/* log_old_name writes the name of old file i (path.i) into buf. */
static void
log_old_name(char *buf, size_t len, int i)
{
	snprintf(buf, len, "%s.%d", log_path, i);
}

/*
 * log_rotate shifts the old files up by one (the oldest goes), moves the
 * current file to path.1 and opens a new one. rename() on Windows does
 * not replace a file, so each target is removed first. Under log_mtx.
 */
static void
log_rotate(void)
{
	char from[LOG_PATH_MAX + 16], to[LOG_PATH_MAX + 16];
	int moved = 0;

	fclose(log_fp);
	log_fp = NULL;
	for (int i = log_keep; i >= 1; i--) {
		log_old_name(to, sizeof to, i);
		if (i > 1)
			log_old_name(from, sizeof from, i - 1);
		else
			snprintf(from, sizeof from, "%s", log_path);
		(void) remove(to);
		moved = rename(from, to) == 0;
	}
	if (log_keep == 0)
		moved = remove(log_path) == 0;
	log_fp = log_open_append(log_path);
	if (log_fp == NULL)
		log_retry_ms = plat_mono_ms() + 10000;
	else if (!moved)
		log_size = 0; /* grows on; try again after max_bytes more */
}

/* log_write writes one line to the log file or stderr. Under log_mtx. */
static void
log_write(const char *line, size_t n)
{
	if (log_path[0] == '\0') {
		fwrite(line, 1, n, stderr);
		fflush(stderr);
		return;
	}
	if (log_fp == NULL && plat_mono_ms() >= log_retry_ms
	    && (log_fp = log_open_append(log_path)) == NULL)
		log_retry_ms = plat_mono_ms() + 10000;
	if (log_fp != NULL && log_size > 0
	    && log_size + (int64_t) n > log_max_bytes)
		log_rotate();
	if (log_fp == NULL) {
		fwrite(line, 1, n, stderr);
		fflush(stderr);
		return;
	}
	fwrite(line, 1, n, log_fp);
	fflush(log_fp);
	log_size += (int64_t) n;
}

bool
log_file_open(
    const char *path, int64_t max_bytes, int keep, char *err, size_t errlen)
{
	FILE *f;

	if (strlen(path) >= LOG_PATH_MAX) {
		snprintf(err, errlen,
		    "could not open log file \"%.40s...\": "
		    "the name is too long",
		    path);
		return false;
	}
	pthread_mutex_lock(&log_mtx);
	if ((f = log_open_append(path)) == NULL) {
		snprintf(err, errlen, "could not open log file \"%s\": %s",
		    path, plat_strerror(errno));
		pthread_mutex_unlock(&log_mtx);
		return false;
	}
	if (log_fp != NULL)
		fclose(log_fp);
	log_fp = f;
	snprintf(log_path, sizeof log_path, "%s", path);
	log_max_bytes
	    = max_bytes < LOG_FILE_MIN_BYTES ? LOG_FILE_MIN_BYTES : max_bytes;
	log_keep = keep < 0 ? 0 : keep > 9 ? 9 : keep;
	atomic_store(&log_to_file, true);
	pthread_mutex_unlock(&log_mtx);
	return true;
}

void
log_file_close(void)
{
	pthread_mutex_lock(&log_mtx);
	if (log_fp != NULL)
		fclose(log_fp);
	log_fp = NULL;
	log_path[0] = '\0';
	atomic_store(&log_to_file, false);
	pthread_mutex_unlock(&log_mtx);
}

void
log_msg(log_level lvl, const char *id, const char *fmt, ...)
{
	char line[2048], clean[2048];
	size_t n = 0;
	va_list ap;

	if (!log_enabled(lvl))
		return;
	if (log_journal && !atomic_load(&log_to_file)) {
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
	log_write(clean, n);
	pthread_mutex_unlock(&log_mtx);
}

void
log_limited(log_limit *l, log_level lvl, const char *id, const char *fmt, ...)
{
	char msg[2048];
	int64_t now = plat_mono_ms(), hidden = 0, window = l->every_ms;
	bool log;
	va_list ap;

	if (!log_enabled(lvl))
		return;
	pthread_mutex_lock(&l->mu);
	if (now - l->window_ms >= l->every_ms) {
		hidden = l->hidden;
		l->window_ms = now;
		l->logged = l->hidden = 0;
	}
	if ((log = l->logged < l->max))
		l->logged++;
	else
		l->hidden++;
	pthread_mutex_unlock(&l->mu);
	if (hidden > 0)
		log_msg(lvl, id,
		    "%" PRId64 " more lines like this were not logged one by "
		    "one (at most %d per %" PRId64 " s)",
		    hidden, l->max, window / 1000);
	if (!log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_msg(lvl, id, "%s", msg);
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
cli_warning(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cli_vprint("warning", fmt, ap);
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
