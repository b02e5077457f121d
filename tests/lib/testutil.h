/*
 * testutil.h: a minimal harness for the C unit tests.
 *
 * A test file defines static void functions that use the CHECK macros and
 * ends with a table of cases named after the failure they exercise, then
 * TEST_MAIN(table). A failed check prints file:line and ends that case;
 * the program prints "N passed, M failed" and exits non-zero on failure.
 */
#ifndef BS_TESTUTIL_H
#define BS_TESTUTIL_H

#include <stdio.h>
#include <string.h>

#include "proto/err.h"
#include "testos.h"

typedef struct {
	const char *name; /* the failure the case exercises */
	void (*fn)(void); /* the case */
} test_case;

static int test_failed_; /* set by a failing CHECK in the current case */

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: check failed: %s\n",          \
			    __FILE__, __LINE__, #cond);                       \
			test_failed_ = 1;                                     \
			return;                                               \
		}                                                             \
	} while (0)

#define CHECK_ERR(x, want)                                                    \
	do {                                                                  \
		int got_ = (int) (x), want_ = (int) (want);                   \
		if (got_ != want_) {                                          \
			fprintf(stderr,                                       \
			    "%s:%d: %s: got \"%s\", want \"%s\"\n", __FILE__, \
			    __LINE__, #x, proto_strerror(got_),               \
			    proto_strerror(want_));                           \
			test_failed_ = 1;                                     \
			return;                                               \
		}                                                             \
	} while (0)

#define CHECK_OK(x) CHECK_ERR(x, PROTO_OK)

/* CHECK_STR checks that string s contains sub. */
#define CHECK_STR(s, sub)                                                     \
	do {                                                                  \
		if (strstr((s), (sub)) == NULL) {                             \
			fprintf(stderr, "%s:%d: \"%s\" lacks \"%s\"\n",       \
			    __FILE__, __LINE__, (s), (sub));                  \
			test_failed_ = 1;                                     \
			return;                                               \
		}                                                             \
	} while (0)

/* CHECK_STREQ checks that string got equals want. */
#define CHECK_STREQ(got, want)                                                \
	do {                                                                  \
		if (strcmp((got), (want)) != 0) {                             \
			fprintf(stderr, "%s:%d: got [%s], want [%s]\n",       \
			    __FILE__, __LINE__, (got), (want));               \
			test_failed_ = 1;                                     \
			return;                                               \
		}                                                             \
	} while (0)

static inline int
test_run(const test_case *cases, size_t n)
{
	int passed = 0, failed = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		test_failed_ = 0;
		cases[i].fn();
		if (test_failed_) {
			fprintf(stderr, "FAIL %s\n", cases[i].name);
			failed++;
		} else {
			printf("ok   %s\n", cases[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}

#define TEST_MAIN(table)                                                      \
	int main(void)                                                        \
	{                                                                     \
		return test_run(table, sizeof(table) / sizeof(table[0]));     \
	}

#endif /* BS_TESTUTIL_H */
