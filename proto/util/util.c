/* util.c: memory, time, randomness, signals and number parsing. */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

volatile sig_atomic_t sig_term;
volatile sig_atomic_t sig_hup;

static void
oom(size_t n)
{
	log_error("OUT-OF-MEMORY", "out of memory allocating %zu bytes", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return s;
}

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
now_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

int64_t
now_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
now_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

void
sleep_ms(int64_t ms)
{
	/* Sleep in slices so a signal flag is seen within 50 ms. */
	int64_t end = now_mono_ms() + ms;
	while (!sig_term) {
		int64_t left = end - now_mono_ms();
		if (left <= 0)
			break;
		if (left > 50)
			left = 50;
		struct timespec ts
		    = {left / 1000, (long) (left % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
}

proto_err
rand_bytes(void *p, size_t n)
{
	uint8_t *b = p;
	while (n > 0) {
		ssize_t r = getrandom(b, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return PROTO_EIO;
		}
		b += r;
		n -= (size_t) r;
	}
	return PROTO_OK;
}

uint64_t
rand_u64(void)
{
	uint64_t v;
	if (rand_bytes(&v, sizeof v) != PROTO_OK) {
		log_error("RANDOM-FAIL", "could not read random bytes: %s",
		    strerror(errno));
		abort();
	}
	return v;
}

void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static void
on_term(int sig)
{
	(void) sig;
	if (sig_term)
		_exit(1); /* second signal: stop at once */
	sig_term = 1;
}

static void
on_hup(int sig)
{
	(void) sig;
	sig_hup = 1;
}

void
sig_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

bool
parse_int64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char *name, char *err, size_t errlen)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (s[0] == '\0' || *end != '\0' || errno == ERANGE) {
		snprintf(
		    err, errlen, "invalid value \"%s\" for \"%s\"", s, name);
		return false;
	}
	if (v < min || v > max) {
		snprintf(err, errlen,
		    "%s is outside the valid range for \"%s\" "
		    "(%" PRId64 " .. %" PRId64 ")",
		    s, name, min, max);
		return false;
	}
	*out = v;
	return true;
}

void
sd_notify_msg(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t plen;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	plen = strlen(path);
	if (plen >= sizeof sa.sun_path)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	(void) sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
	    (struct sockaddr *) &sa,
	    (socklen_t) (offsetof(struct sockaddr_un, sun_path) + plen));
	close(fd);
}
