/*
 * pos_latency.c: how long a POS write takes, as the POS sees it.
 *
 * Runs N single-row commits (BEGIN; INSERT INTO transactions ...; COMMIT)
 * against a POS SQLite file, the way a till records a sale header, and
 * prints the latency distribution. Run it on a file with and without the
 * capture triggers to see what capture costs, and while an agent drains a
 * backlog to see whether the agent holds the POS up.
 *
 *   pos_latency DB ROWS SYNC [BATCH [PAUSE_US]]
 *
 * SYNC is FULL or NORMAL (PRAGMA synchronous). BATCH > 1 inserts that many
 * rows per transaction instead, to measure the per-row cost of the trigger
 * without the commit. PAUSE_US sleeps between commits, like a till that
 * writes a sale now and then, so the samples spread over a longer time. Output
 * is one line of "key=value" pairs in microseconds, easy to read and to parse.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec * 1e6 + (double) ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
}

static void
die(sqlite3 *db, const char *what)
{
	fprintf(stderr, "pos_latency: error: %s: %s\n", what,
	    db ? sqlite3_errmsg(db) : "?");
	exit(1);
}

static void
exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(db, sql);
}

/* One sale header, bound with values that vary like a real till's. */
static void
insert_sale(sqlite3 *db, sqlite3_stmt *st, int i)
{
	sqlite3_bind_int(st, 1, 1);
	sqlite3_bind_int(st, 2, 1 + i % 7);
	sqlite3_bind_int64(st, 3, 1000 + (i * 37) % 90000);
	sqlite3_bind_text(st, 4, "sale", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, i % 3 ? "card" : "cash", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, "2026-11-22 10:00:00", -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		die(db, "insert");
	sqlite3_reset(st);
}

int
main(int argc, char **argv)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	double *lat, total = 0;
	int rows, batch = 1, pause_us = 0;
	char pragma[64];

	if (argc < 4 || argc > 6) {
		fprintf(stderr,
		    "usage: pos_latency DB ROWS FULL|NORMAL "
		    "[BATCH [PAUSE_US]]\n");
		return 1;
	}
	rows = atoi(argv[2]);
	if (argc >= 5)
		batch = atoi(argv[4]);
	if (argc == 6)
		pause_us = atoi(argv[5]);
	if (rows <= 0 || batch <= 0 || pause_us < 0)
		return 1;
	if (sqlite3_open(argv[1], &db) != SQLITE_OK)
		die(db, "open");
	sqlite3_busy_timeout(db, 10000);
	snprintf(pragma, sizeof pragma, "PRAGMA synchronous=%s", argv[3]);
	exec(db, pragma);
	if (sqlite3_prepare_v2(db,
	        "INSERT INTO transactions(store_id, user_id, total_cost, "
	        "payment_type, payment_method, payment_status, created_at, "
	        "updated_at, tax) VALUES (?1, ?2, ?3, ?4, ?5, 'paid', ?6, ?6, "
	        "0)",
	        -1, &st, NULL)
	    != SQLITE_OK)
		die(db, "prepare");
	lat = calloc((size_t) rows, sizeof *lat);
	for (int i = 0; i < rows; i++) {
		double t0 = now_us();
		exec(db, "BEGIN");
		for (int j = 0; j < batch; j++)
			insert_sale(db, st, i * batch + j);
		exec(db, "COMMIT");
		lat[i] = now_us() - t0;
		total += lat[i];
		if (pause_us > 0) {
			struct timespec ts = {pause_us / 1000000,
			    (long) (pause_us % 1000000) * 1000};
			nanosleep(&ts, NULL);
		}
	}
	qsort(lat, (size_t) rows, sizeof *lat, cmp_double);
	printf("commits=%d rows_per_commit=%d sync=%s mean_us=%.1f "
	       "p50_us=%.1f p99_us=%.1f max_us=%.1f per_row_us=%.2f\n",
	    rows, batch, argv[3], total / rows, lat[rows / 2],
	    lat[(int) (rows * 0.99)], lat[rows - 1], total / rows / batch);
	free(lat);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}
