/*
 * util.h: memory, invariants, hex and number parsing shared by the daemons.
 * Clocks, randomness and signals are the operating system's: platform.h.
 *
 * OOM policy: the daemons' xmalloc family logs and aborts; nothing sensible
 * can continue without memory. proto/ itself returns PROTO_ENOMEM instead.
 */
#ifndef BS_UTIL_H
#define BS_UTIL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/compiler.h"
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
char *xasprintf(const char *fmt, ...) BS_PRINTF(1, 2);

/* hex_encode writes 2n hex digits and a NUL into out (size 2n + 1). */
void hex_encode(const uint8_t *p, size_t n, char *out);

/*
 * parse_int64 parses a whole decimal string within [min, max]. On failure
 * writes "invalid value "x" for "name": ..." into err and returns false.
 */
bool parse_int64(const char *s, int64_t min, int64_t max, int64_t *out,
    const char *name, char *err, size_t errlen) MUST_CHECK;

#endif /* BS_UTIL_H */
