/*
 * agent_test.h: the shared harness of the agent unit tests, which run
 * against real SQLite files.
 *
 * Each case is a bool function that uses the CHECK macros (a failed check
 * prints file:line and returns false). agent_test_main() gives every case
 * a fresh POS file with the example schema in a temp dir (db, conf and
 * tconf describe it), runs the case, removes the file and prints
 * "N passed, M failed".
 */
#ifndef BS_AGENT_TEST_H
#define BS_AGENT_TEST_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testos.h"
#include "db.h"
#include "util.h"

#define CHECK(x)                                                              \
	do {                                                                  \
		if (!(x)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n",          \
			    __FILE__, __LINE__, #x);                          \
			return false;                                         \
		}                                                             \
	} while (0)
#define CHECK_OK(x)     CHECK((x) == PROTO_OK)
#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)

typedef struct {
	const char *name; /* the failure the case exercises */
	bool (*fn)(void); /* the case; false if a check failed */
} agent_test_case;

static const char schema[]
    = "CREATE TABLE transactions(id INTEGER PRIMARY KEY, store_id INTEGER, "
      "total_cost INTEGER NOT NULL, created_at TEXT, "
      "is_synced INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE transaction_items(id INTEGER PRIMARY KEY, "
      "transaction_id INTEGER NOT NULL, qty INTEGER NOT NULL, "
      "is_synced INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE payments(transaction_id INTEGER NOT NULL, "
      "line_no INTEGER NOT NULL, method TEXT NOT NULL, amount INTEGER NOT "
      "NULL, is_synced INTEGER NOT NULL DEFAULT 0, "
      "PRIMARY KEY (transaction_id, line_no));"
      "CREATE TABLE nokey(a INTEGER, b TEXT);"
      "CREATE TABLE \"odd\"\"name\"(\"we\"\"ird\" INTEGER PRIMARY KEY, v);";

static char dir[260], path[300];
static agent_table_config tconf[5];
static agent_config conf;
static sqlite3 *db;
static char err[512];

/* setup creates the POS file in a fresh <tmp>/<prog>XXXXXX and configures
 * transactions, transaction_items and payments (tconf[3] is odd"name). */
static void
setup(const char *prog)
{
	static const char *names[]
	    = {"transactions", "transaction_items", "payments", "odd\"name"};
	if (!test_mkdtemp(dir, sizeof dir, prog))
		abort();
	snprintf(path, sizeof path, "%s/pos.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK
	    || sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK)
		abort();
	memset(&conf, 0, sizeof conf);
	memset(tconf, 0, sizeof tconf);
	for (size_t i = 0; i < 4; i++)
		tconf[i].name = (char *) names[i];
	conf.database = path;
	conf.tables = tconf;
	conf.ntables = 3;
	conf.busy_timeout_ms = 1000;
}

/* teardown closes the POS file and removes it, its side files and dir. */
static void
teardown(void)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[400];

	sqlite3_close_v2(db);
	for (size_t i = 0; i < ARRAY_LEN(sfx); i++) {
		snprintf(p, sizeof p, "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

/* First column of the first row of sql as text ("" for none/NULL). */
static const char *
query(const char *sql)
{
	static char out[8192];
	sqlite3_stmt *st;
	out[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		snprintf(out, sizeof out, "ERROR %s", sqlite3_errmsg(db));
		return out;
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, sizeof out, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static bool
exec(const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "exec \"%s\": %s\n", sql, msg);
		sqlite3_free(msg);
		return false;
	}
	return true;
}

/*
 * agent_test_main runs each case between setup(prog) and teardown(),
 * calling cleanup (if not NULL) first to release what the file's cases
 * opened on the POS file. It logs at level and returns the exit status.
 */
static int
agent_test_main(const char *prog, log_level level,
    const agent_test_case *cases, size_t n, void (*cleanup)(void))
{
	int passed = 0, failed = 0;

	log_init(prog, level);
	for (size_t i = 0; i < n; i++) {
		setup(prog);
		bool ok = cases[i].fn();
		if (cleanup != NULL)
			cleanup();
		teardown();
		printf("%s: %s\n", ok ? "ok" : "FAIL", cases[i].name);
		ok ? passed++ : failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif /* BS_AGENT_TEST_H */
