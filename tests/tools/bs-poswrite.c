/*
 * bs-poswrite.c: write sales into a POS SQLite file, as a till does.
 *
 * Usage: bs-poswrite --db FILE --sales N [--seed S] [--rate R]
 *
 * Each sale is one small transaction (BEGIN IMMEDIATE ... COMMIT) on the
 * upstream tables of the example schema (deploy/pos/retail.sql):
 *
 *     transactions       1 row (totals, payment method, created_at)
 *     transaction_items  1 to 5 rows (product 1 to 20, qty 1 to 3)
 *     payments           1 row, key (transaction_id, line_no = 1)
 *
 * The data depends only on the seed. --rate writes at most R sales per
 * second (pacing; default: as fast as the file allows). An agent may use
 * the file at the same time: a busy POS file is waited for (30 s).
 *
 * It is the integration tests' POS writer on the platform under test: a
 * cross build builds it for the target, and the tests run it through the
 * same runner as the agent (BS_AGENT_RUNNER, tests/lib/bsproc.py). So it
 * uses SQLite and standard C only: the clock and the sleep come from
 * SQLite's VFS, which works alike on every platform SQLite runs on.
 *
 * Prints one JSON line of counts at the end, like tests/lib/possim.py:
 *   {"sales": N, "items": N, "payments": N, "seconds": S}
 * Exit 0 when every sale was written, 2 with a message on stderr when
 * SQLite fails, 1 on bad usage.
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG       "bs-poswrite"
#define BUSY_MS    30000
#define N_PRODUCTS 20

/* Prices in cents of products 1 to 20 (the names are tests/lib/possim.py's
 * product list). */
static const int prices[N_PRODUCTS] = {1899, 119, 249, 329, 399, 279, 549, 299,
    459, 159, 329, 189, 399, 139, 899, 89, 359, 199, 249, 699};
static const char *const methods[] = {"cash", "card", "card", "mobile"};

struct writer {
	sqlite3 *db;
	sqlite3_stmt *ins_txn;  /* INSERT INTO transactions */
	sqlite3_stmt *ins_item; /* INSERT INTO transaction_items */
	sqlite3_stmt *ins_pay;  /* INSERT INTO payments */
	uint64_t rng;           /* xorshift64 state, never 0 */
	int64_t clock_s;        /* simulated seconds since the base time */
	long items;             /* transaction_items rows written */
};

/* next returns a number in [0, n), from the seeded generator. */
static int
next(struct writer *w, int n)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (int) (w->rng % (uint64_t) n);
}

/* now_ms: milliseconds of SQLite's VFS clock (wall time). */
static int64_t
now_ms(void)
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(NULL);
	sqlite3_int64 t = 0;

	if (vfs != NULL && vfs->iVersion >= 2 && vfs->xCurrentTimeInt64)
		vfs->xCurrentTimeInt64(vfs, &t);
	return (int64_t) t;
}

static int
fail(struct writer *w, const char *what)
{
	fprintf(stderr, PROG ": error: %s: %s\n", what,
	    w->db ? sqlite3_errmsg(w->db) : "out of memory");
	return 2;
}

static int
exec(struct writer *w, const char *sql)
{
	if (sqlite3_exec(w->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail(w, sql);
	return 0;
}

/* step runs a bound statement to SQLITE_DONE and resets it. */
static int
step(struct writer *w, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail(w, what);
}

static int
prepare(struct writer *w)
{
	/* created_at is the base time plus the simulated clock, in the
	 * POS's 'YYYY-MM-DD HH:MM:SS' form. */
	static const char sql_txn[]
	    = "INSERT INTO transactions(store_id, user_id, total_cost, "
	      "payment_type, payment_method, received_amount, change_amount, "
	      "customer_name, payment_status, created_at, updated_at, tax) "
	      "VALUES (1, ?1, ?2, 'sale', ?3, ?4, ?4 - ?2, NULL, 'paid', "
	      "datetime('2024-03-01 08:00:00', ?5 || ' seconds'), "
	      "datetime('2024-03-01 08:00:00', ?5 || ' seconds'), ?2 * 7 / "
	      "107)";
	static const char sql_item[]
	    = "INSERT INTO transaction_items(transaction_id, product_id, "
	      "product_name, qty, price, subtotal) VALUES (?1, ?2, "
	      "'product ' || ?2, ?3, ?4, ?3 * ?4)";
	static const char sql_pay[]
	    = "INSERT INTO payments(transaction_id, line_no, method, amount) "
	      "VALUES (?1, 1, ?2, ?3)";

	if (sqlite3_prepare_v2(w->db, sql_txn, -1, &w->ins_txn, NULL)
	        != SQLITE_OK
	    || sqlite3_prepare_v2(w->db, sql_item, -1, &w->ins_item, NULL)
	        != SQLITE_OK
	    || sqlite3_prepare_v2(w->db, sql_pay, -1, &w->ins_pay, NULL)
	        != SQLITE_OK)
		return fail(w, "could not prepare the inserts");
	return 0;
}

/* sale writes one sale in one transaction; 0 or 2 (error printed). */
static int
sale(struct writer *w)
{
	int pid[5], qty[5], n = 1 + next(w, 5), total = 0, rv;
	const char *method = methods[next(w, 4)];
	sqlite3_int64 tid;

	for (int i = 0; i < n; i++) {
		pid[i] = 1 + next(w, N_PRODUCTS);
		qty[i] = 1 + next(w, 3);
		total += qty[i] * prices[pid[i] - 1];
	}
	w->clock_s += 5 + next(w, 175);
	if ((rv = exec(w, "BEGIN IMMEDIATE")) != 0)
		return rv;
	sqlite3_bind_int(w->ins_txn, 1, 1 + next(w, 4));
	sqlite3_bind_int(w->ins_txn, 2, total);
	sqlite3_bind_text(w->ins_txn, 3, method, -1, SQLITE_STATIC);
	/* cash is paid in whole 10.00 notes; the rest exactly */
	sqlite3_bind_int(w->ins_txn, 4,
	    strcmp(method, "cash") ? total : (total + 999) / 1000 * 1000);
	sqlite3_bind_int64(w->ins_txn, 5, w->clock_s);
	if ((rv = step(w, w->ins_txn, "could not insert a transaction")) != 0)
		goto rollback;
	tid = sqlite3_last_insert_rowid(w->db);
	for (int i = 0; i < n; i++) {
		sqlite3_bind_int64(w->ins_item, 1, tid);
		sqlite3_bind_int(w->ins_item, 2, pid[i]);
		sqlite3_bind_int(w->ins_item, 3, qty[i]);
		sqlite3_bind_int(w->ins_item, 4, prices[pid[i] - 1]);
		if ((rv = step(w, w->ins_item, "could not insert an item"))
		    != 0)
			goto rollback;
	}
	sqlite3_bind_int64(w->ins_pay, 1, tid);
	sqlite3_bind_text(w->ins_pay, 2, method, -1, SQLITE_STATIC);
	sqlite3_bind_int(w->ins_pay, 3, total);
	if ((rv = step(w, w->ins_pay, "could not insert a payment")) != 0)
		goto rollback;
	if ((rv = exec(w, "COMMIT")) != 0)
		goto rollback;
	w->items += n;
	return 0;

rollback:
	sqlite3_exec(w->db, "ROLLBACK", NULL, NULL, NULL);
	return rv;
}

static int
usage(const char *msg)
{
	if (msg != NULL)
		fprintf(stderr, PROG ": error: %s\n", msg);
	fprintf(stderr,
	    "usage: " PROG " --db FILE --sales N [--seed S] [--rate R]\n");
	return 1;
}

/* parse_num reads a whole non-negative decimal number; -1 if it is not. */
static long
parse_num(const char *s)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	v = strtol(s, &end, 10);
	return *end == '\0' ? v : -1;
}

int
main(int argc, char **argv)
{
	struct writer w = {0};
	const char *path = NULL;
	long sales = -1, seed = 1, rate = 0, n;
	int64_t t0;
	int rv = 0;

	for (int i = 1; i < argc; i += 2) {
		const char *opt = argv[i],
		           *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (val == NULL)
			return usage("an option lacks its value");
		if (strcmp(opt, "--db") == 0)
			path = val;
		else if (strcmp(opt, "--sales") == 0)
			sales = parse_num(val);
		else if (strcmp(opt, "--seed") == 0)
			seed = parse_num(val);
		else if (strcmp(opt, "--rate") == 0)
			rate = parse_num(val);
		else
			return usage("unknown option");
	}
	if (path == NULL || sales < 0 || seed < 0 || rate < 0)
		return usage(NULL);
	w.rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t) seed;
	if (sqlite3_open_v2(path, &w.db, SQLITE_OPEN_READWRITE, NULL)
	    != SQLITE_OK) {
		rv = fail(&w, "could not open the POS file");
		goto done;
	}
	sqlite3_busy_timeout(w.db, BUSY_MS);
	if ((rv = prepare(&w)) != 0)
		goto done;
	t0 = now_ms();
	for (n = 0; n < sales; n++) {
		if (rate > 0) {
			int64_t ahead = t0 + n * 1000 / rate - now_ms();
			if (ahead > 0)
				sqlite3_sleep((int) ahead);
		}
		if ((rv = sale(&w)) != 0)
			break;
	}
	printf("{\"sales\": %ld, \"items\": %ld, \"payments\": %ld, "
	       "\"seconds\": %.2f}\n",
	    n, w.items, n, (double) (now_ms() - t0) / 1000.0);
done:
	sqlite3_finalize(w.ins_txn);
	sqlite3_finalize(w.ins_item);
	sqlite3_finalize(w.ins_pay);
	sqlite3_close(w.db);
	return rv;
}
