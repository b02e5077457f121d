/*
 * util.h: memory, time, randomness and signal flags shared by the daemons.
 *
 * OOM policy: the daemons' xmalloc family logs and aborts; nothing sensible
 * can continue without memory. proto/ itself returns PROTO_ENOMEM instead.
 */
#ifndef BS_UTIL_H
#define BS_UTIL_H

#include <assert.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

/*
 * Defensive checks that stay in release builds: if (NEVER(p == NULL))
 * handles a case that cannot happen. A debug build (no NDEBUG) asserts
 * instead, so a test that reaches it fails loudly; a release build takes
 * the branch, marked unlikely. (SQLite's ALWAYS/NEVER.)
 */
#ifdef NDEBUG
#define ALWAYS(x) (__builtin_expect(!!(x), 1))
#define NEVER(x)  (__builtin_expect(!!(x), 0))
#else
#define ALWAYS(x) ((x) ? 1 : (assert(0), 0))
#define NEVER(x)  ((x) ? (assert(0), 1) : 0)
#endif
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * ARRAY_GROW makes array p (cap elements allocated) hold at least need
 * elements, doubling from 16; p may move (xrealloc: OOM aborts).
 */
#define ARRAY_GROW(p, cap, need)                                              \
	do {                                                                  \
		if ((need) > (cap)) {                                         \
			size_t n_ = (cap) ? (cap) : 16;                       \
			while (n_ < (need))                                   \
				n_ *= 2;                                      \
			(p) = xrealloc((p), n_ * sizeof *(p));                \
			(cap) = n_;                                           \
		}                                                             \
	} while (0)
#define MUST_CHECK __attribute__((warn_unused_result))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds of CLOCK_MONOTONIC, and of the wall clock since the epoch. */
int64_t now_mono_ms(void);
int64_t now_mono_us(void);
int64_t now_wall_ms(void);
/* sleep_ms sleeps, returning early if a termination signal arrives. */
void sleep_ms(int64_t ms);

/* rand_bytes fills p with n bytes from the kernel's CSPRNG. */
proto_err rand_bytes(void *p, size_t n) MUST_CHECK;
/* rand_u64 returns a random 64-bit number (CSPRNG; aborts if unavailable). */
uint64_t rand_u64(void);
/* hex_encode writes 2n hex digits and a NUL into out (size 2n + 1). */
void hex_encode(const uint8_t *p, size_t n, char *out);

/*
 * Signal flags. sig_install makes SIGTERM and SIGINT set sig_term (a second
 * one exits at once), SIGHUP set sig_hup, and blocks SIGPIPE.
 */
extern volatile sig_atomic_t sig_term;
extern volatile sig_atomic_t sig_hup;
void sig_install(void);

/*
 * parse_int64 parses a whole decimal string within [min, max]. On failure
 * writes "invalid value "x" for "name": ..." into err and returns false.
 */
bool parse_int64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char *name, char *err, size_t errlen) MUST_CHECK;

/* sd_notify_msg sends a message to systemd if NOTIFY_SOCKET is set. */
void sd_notify_msg(const char *msg);

#endif /* BS_UTIL_H */
