/*
 * platform_posix.c: platform.h for Linux (glibc; x86-64 and arm64): the
 * kernel's getrandom, clock_gettime, sigaction flags, systemd's notify
 * socket and stat-based permission checks.
 */
#include "platform.h"

#include <errno.h>
#include <nng/nng.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* Set by the signal handlers (or plat_stop_request), read by the loops. */
static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_hup;

static int64_t
clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
plat_mono_ms(void)
{
	return clock_us(CLOCK_MONOTONIC) / 1000;
}

int64_t
plat_mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int64_t
plat_wall_ms(void)
{
	return clock_us(CLOCK_REALTIME) / 1000;
}

void
plat_gmtime(int64_t sec, struct tm *out)
{
	time_t t = (time_t) sec;
	gmtime_r(&t, out);
}

void
plat_sleep_ms(int64_t ms)
{
	/* Sleep in slices so a stop request is seen within 50 ms. */
	int64_t end = plat_mono_ms() + ms;
	while (!got_term) {
		int64_t left = end - plat_mono_ms();
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
plat_rand_bytes(void *p, size_t n)
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
plat_rand_u64(void)
{
	uint64_t v;
	if (plat_rand_bytes(&v, sizeof v) != PROTO_OK) {
		log_error("RANDOM-FAIL", "could not read random bytes: %s",
		    strerror(errno));
		abort();
	}
	return v;
}

static void
on_term(int sig)
{
	(void) sig;
	if (got_term)
		_exit(1); /* second signal: stop at once */
	got_term = 1;
}

static void
on_hup(int sig)
{
	(void) sig;
	got_hup = 1;
}

void
plat_sig_install(void)
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
plat_stop_requested(void)
{
	return got_term != 0;
}

void
plat_stop_request(void)
{
	got_term = 1;
}

bool
plat_reload_take(void)
{
	if (!got_hup)
		return false;
	got_hup = 0;
	return true;
}

void
plat_notify(const char *msg)
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

static const char no_services[]
    = "Windows services exist only on Windows; on Linux, systemd runs "
      "the agent (deploy/systemd)";

int
plat_service_run(
    const char *name, int (*fn)(void *), void *arg, char *err, size_t errlen)
{
	(void) name, (void) fn, (void) arg;
	snprintf(err, errlen, "%s", no_services);
	return -1;
}

proto_err
plat_service_install(const char *name, const char *display,
    const char *description, const char *args, char *err, size_t errlen)
{
	(void) name, (void) display, (void) description, (void) args;
	snprintf(err, errlen, "%s", no_services);
	return PROTO_EINVAL;
}

proto_err
plat_service_uninstall(const char *name, char *err, size_t errlen)
{
	(void) name;
	snprintf(err, errlen, "%s", no_services);
	return PROTO_EINVAL;
}

const char *
plat_default_path(const char *file)
{
	static _Thread_local char buf[512];

	snprintf(buf, sizeof buf, "/etc/branchsync/%s", file);
	return buf;
}

void
plat_nng_fini(void)
{
	nng_fini();
}

bool
plat_absolute_path(const char *path, char *out, size_t outlen)
{
	char cwd[4096];

	if (path[0] == '/')
		return (size_t) snprintf(out, outlen, "%s", path) < outlen;
	if (getcwd(cwd, sizeof cwd) == NULL)
		return false;
	return (size_t) snprintf(out, outlen, "%s/%s", cwd, path) < outlen;
}

bool
plat_file_exposed(const char *path, char *how, size_t howlen)
{
	struct stat st;

	if (stat(path, &st) != 0 || !(st.st_mode & (S_IRGRP | S_IROTH)))
		return false;
	snprintf(how, howlen,
	    "readable by %s (mode %04o); run \"chmod 600 %s\"",
	    (st.st_mode & S_IROTH) ? "all users" : "its group",
	    (unsigned) (st.st_mode & 07777), path);
	return true;
}

const char *
plat_strerror(int errnum)
{
	/* glibc's strerror is thread-safe (its buffer is per thread). */
	return strerror(errnum);
}
