/*
 * log_test.c: tests of the log file of proto/util/log.c and its rotation
 * by size. Runs natively and under wine, where rename() does not replace
 * a file. Cases are named after the failure they exercise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "testutil.h"

#define MAX_BYTES 4096
#define KEEP      3

static char dir[260], path[300];
static char buf[4 * MAX_BYTES];
static int next_seq; /* the seq of the next line written */

/* setup makes a fresh directory and sends the log to dir/agent.log. */
static int
setup(int64_t max_bytes, int keep)
{
	char err[512];

	if (!test_mkdtemp(dir, sizeof dir, "log_test"))
		return 0;
	snprintf(path, sizeof path, "%s/agent.log", dir);
	next_seq = 0;
	if (!log_file_open(path, max_bytes, keep, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return 0;
	}
	return 1;
}

/* teardown sends the log back to stderr and removes the files and dir. */
static void
teardown(void)
{
	char p[320];

	log_file_close();
	remove(path);
	for (int i = 1; i <= 9; i++) {
		snprintf(p, sizeof p, "%s.%d", path, i);
		remove(p);
	}
	rmdir(dir);
}

/* old_path returns the name of old file i (0: the current file). */
static const char *
old_path(int i)
{
	static char p[320];

	if (i == 0)
		return path;
	snprintf(p, sizeof p, "%s.%d", path, i);
	return p;
}

/* slurp reads file p into buf; returns its size, or -1 if it is absent. */
static long
slurp(const char *p)
{
	FILE *f = fopen(p, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (long) n;
}

/* put writes a file p holding n bytes of text lines. */
static int
put(const char *p, size_t n)
{
	FILE *f = fopen(p, "wb");

	if (f == NULL)
		return 0;
	for (size_t i = 0; i < n; i++)
		fputc(i % 64 == 63 ? '\n' : 'x', f);
	return fclose(f) == 0;
}

/* lines writes n log lines "seq=N" padded to about 100 bytes. */
static void
lines(int n)
{
	for (int i = 0; i < n; i++, next_seq++)
		log_info("TEST-LINE", "seq=%d %.50s", next_seq,
		    "................................................."
		    "....");
}

/*
 * seqs checks that file p holds whole lines and returns the seq of its
 * first line in *first and of its last in *last, and the number of lines;
 * -1 if a line is cut, out of order or not ours.
 */
static int
seqs(const char *p, int *first, int *last)
{
	char *s = buf, *nl, *q;
	int n = 0, prev = -1;

	if (slurp(p) <= 0 || buf[strlen(buf) - 1] != '\n')
		return -1;
	for (; (nl = strchr(s, '\n')) != NULL; s = nl + 1, n++) {
		*nl = '\0';
		if ((q = strstr(s, " INFO TEST-LINE seq=")) == NULL)
			return -1;
		int v = atoi(q + 20);
		if (prev >= 0 && v != prev + 1)
			return -1;
		if (prev < 0)
			*first = v;
		*last = prev = v;
	}
	return n;
}

static void
test_file_passes_its_limit(void)
{
	long size;

	log_init("log_test", LOG_LVL_INFO);
	CHECK(setup(MAX_BYTES, KEEP));
	lines(100); /* about 10 KB */
	for (int i = 0; i <= 2; i++) {
		size = slurp(old_path(i));
		CHECK(size > 0);
		CHECK(size <= MAX_BYTES);
	}
	/* a new file is started only when the next line would not fit */
	CHECK(slurp(old_path(1)) > MAX_BYTES - 200);
	teardown();
}

static void
test_lines_lost_or_cut_at_rotation(void)
{
	int first[KEEP + 1], last[KEEP + 1];

	log_init("log_test", LOG_LVL_INFO);
	CHECK(setup(MAX_BYTES, KEEP));
	lines(150); /* rotates 3 times */
	CHECK(slurp(old_path(3)) > 0);
	CHECK(slurp(old_path(4)) == -1);
	for (int i = 0; i <= KEEP; i++)
		CHECK(seqs(old_path(i), &first[i], &last[i]) > 0);
	CHECK(first[KEEP] == 0);
	CHECK(last[0] == 149);
	for (int i = 1; i <= KEEP; i++)
		CHECK(last[i] + 1 == first[i - 1]);
	teardown();
}

static void
test_old_files_pile_up_past_keep(void)
{
	int first, last;

	/* Windows: each rename's target exists from the second round on. */
	log_init("log_test", LOG_LVL_INFO);
	CHECK(setup(MAX_BYTES, KEEP));
	lines(1000); /* about 25 rotations */
	for (int i = 1; i <= KEEP; i++)
		CHECK(slurp(old_path(i)) > MAX_BYTES - 200);
	CHECK(slurp(old_path(KEEP + 1)) == -1);
	CHECK(seqs(old_path(0), &first, &last) > 0);
	CHECK(last == 999);
	CHECK(seqs(old_path(KEEP), &first, &last) > 0);
	CHECK(first > 800); /* the oldest went */
	teardown();
}

static void
test_existing_file_size_ignored(void)
{
	int first, last;

	log_init("log_test", LOG_LVL_INFO);
	CHECK(test_mkdtemp(dir, sizeof dir, "log_test"));
	snprintf(path, sizeof path, "%s/agent.log", dir);
	/* left by the previous run: full, with full old files beside it */
	CHECK(put(path, MAX_BYTES - 50));
	CHECK(put(old_path(1), 1000));
	CHECK(put(old_path(2), 2000));
	CHECK(put(old_path(3), 3000));
	{
		char err[512];
		CHECK(log_file_open(path, MAX_BYTES, KEEP, err, sizeof err));
	}
	next_seq = 0;
	lines(1); /* does not fit: rotates first */
	CHECK(slurp(old_path(1)) == MAX_BYTES - 50);
	CHECK(slurp(old_path(2)) == 1000);
	CHECK(slurp(old_path(3)) == 2000);
	CHECK(seqs(old_path(0), &first, &last) == 1);
	teardown();
}

static void
test_appends_to_existing_file(void)
{
	log_init("log_test", LOG_LVL_INFO);
	CHECK(test_mkdtemp(dir, sizeof dir, "log_test"));
	snprintf(path, sizeof path, "%s/agent.log", dir);
	CHECK(put(path, 640));
	{
		char err[512];
		CHECK(log_file_open(path, MAX_BYTES, KEEP, err, sizeof err));
	}
	next_seq = 0;
	lines(2);
	CHECK(slurp(path) > 640);
	CHECK(strncmp(buf, "xxxx", 4) == 0);
	CHECK_STR(buf, "seq=1 ");
	CHECK(slurp(old_path(1)) == -1);
	teardown();
}

static void
test_keep_zero_keeps_old_file(void)
{
	int first, last;

	log_init("log_test", LOG_LVL_INFO);
	CHECK(setup(MAX_BYTES, 0));
	lines(100);
	CHECK(slurp(old_path(1)) == -1);
	CHECK(seqs(old_path(0), &first, &last) > 0);
	CHECK(last == 99);
	CHECK(slurp(path) <= MAX_BYTES);
	teardown();
}

static void
test_unopenable_path_accepted(void)
{
	char bad[400], err[512];

	log_init("log_test", LOG_LVL_INFO);
	CHECK(test_mkdtemp(dir, sizeof dir, "log_test"));
	snprintf(path, sizeof path, "%s/agent.log", dir);
	snprintf(bad, sizeof bad, "%s/no-such-dir/agent.log", dir);
	CHECK(!log_file_open(bad, MAX_BYTES, KEEP, err, sizeof err));
	CHECK_STR(err, "could not open log file");
	CHECK_STR(err, "no-such-dir");
	teardown();
}

static void
test_tiny_limit_rotates_every_line(void)
{
	log_init("log_test", LOG_LVL_INFO);
	/* below LOG_FILE_MIN_BYTES: taken as that */
	CHECK(setup(10, KEEP));
	lines(10);
	CHECK(slurp(old_path(1)) == -1);
	teardown();
}

static const test_case cases[] = {
    {"file passes its limit", test_file_passes_its_limit},
    {"lines lost or cut at rotation", test_lines_lost_or_cut_at_rotation},
    {"old files pile up past keep (rename onto an existing file)",
        test_old_files_pile_up_past_keep},
    {"existing file's size ignored", test_existing_file_size_ignored},
    {"existing file truncated instead of appended to",
        test_appends_to_existing_file},
    {"keep 0 keeps an old file", test_keep_zero_keeps_old_file},
    {"unopenable path accepted", test_unopenable_path_accepted},
    {"tiny limit rotates every line", test_tiny_limit_rotates_every_line},
};

TEST_MAIN(cases)
