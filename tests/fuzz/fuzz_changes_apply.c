/*
 * fuzz_changes_apply.c: libFuzzer target for the agent's downstream path:
 * a CHANGES page from the bytes on the wire to the rows in the POS file.
 *
 * The input is decoded as agent/downstream.c does, under agent_config_limits()
 * of agent.ini's defaults with pull_max_rows at its top (100000); a
 * CHANGES page is then applied with
 * inbox_apply() to an in-memory SQLite database made from
 * deploy/pos/retail.sql plus the agent's init (capture_install() for the
 * up tables transactions, transaction_items and payments; products,
 * branch_prices and stock_allocations are down), as "branchsync-agent
 * init" would. That database is built once and every run gets a fresh
 * copy (sqlite3_deserialize), so nothing carries over between runs. The
 * input's hash decides whether the page is applied as part of a reload
 * of "products" (with the reload rows set beforehand) or normally.
 *
 * Checks: inbox_apply returns PROTO_OK, PROTO_EDB, PROTO_EINVAL or
 * PROTO_EPROTO; on error nothing of the page was written (the content of
 * every table is unchanged); on success down_cursor (or reload_cursor)
 * is the page's cursor; and the capture triggers never log anything
 * (master data never goes back up).
 */
#include <sqlite3.h>
#include <string.h>

#include "capture.h"
#include "config.h"
#include "fuzz_common.h"
#include "inbox.h"
#include "log.h"

static agent_table_config tconf[] = {
    {.name = (char *) "transactions", .line = 1, .down = false},
    {.name = (char *) "transaction_items", .line = 2, .down = false},
    {.name = (char *) "payments", .line = 3, .down = false},
    {.name = (char *) "products", .line = 4, .down = true},
    {.name = (char *) "branch_prices", .line = 5, .down = true},
    {.name = (char *) "stock_allocations", .line = 6, .down = true},
};

static agent_config conf;
static unsigned char *image; /* the initialised POS file */
static sqlite3_int64 image_len;

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char *
read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	FUZZ_ASSERT(f != NULL);
	FUZZ_ASSERT(fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0);
	rewind(f);
	s = malloc((size_t) n + 1);
	FUZZ_ASSERT(s != NULL && fread(s, 1, (size_t) n, f) == (size_t) n);
	s[n] = '\0';
	fclose(f);
	return s;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512], *sql = read_file(BS_RETAIL_SQL);
	sqlite3 *db;

	log_init("fuzz_changes_apply", (log_level) 0);
	conf.tables = tconf;
	conf.ntables = sizeof tconf / sizeof *tconf;
	conf.busy_timeout_ms = 1000;
	/* agent/config.c's defaults; pull_max_rows at its top. */
	conf.max_message_bytes = 33554432;
	conf.max_value_bytes = 16777216;
	conf.max_columns = 1600;
	conf.pull_max_rows = 100000;
	FUZZ_ASSERT(sqlite3_open(":memory:", &db) == SQLITE_OK);
	FUZZ_ASSERT(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
	if (capture_install(db, &conf, false, NULL, err, sizeof err)
	    != PROTO_OK) {
		fprintf(stderr, "capture_install: %s\n", err);
		abort();
	}
	image = sqlite3_serialize(db, "main", &image_len, 0);
	FUZZ_ASSERT(image != NULL);
	sqlite3_close(db);
	free(sql);
	return 0;
}

/* fresh returns a new in-memory copy of the initialised POS file. */
static sqlite3 *
fresh(void)
{
	unsigned char *copy = sqlite3_malloc64((sqlite3_uint64) image_len);
	sqlite3 *db;

	FUZZ_ASSERT(copy != NULL);
	memcpy(copy, image, (size_t) image_len);
	FUZZ_ASSERT(sqlite3_open(":memory:", &db) == SQLITE_OK);
	FUZZ_ASSERT(
	    sqlite3_deserialize(db, "main", copy, image_len, image_len,
	        SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE)
	    == SQLITE_OK);
	return db;
}

/* digest hashes the content of every table, in a fixed order. */
static uint64_t
digest(sqlite3 *db)
{
	sqlite3_stmt *tabs, *st;
	uint64_t h = 14695981039346656037ULL;

	FUZZ_ASSERT(sqlite3_prepare_v2(db,
	                "SELECT name FROM sqlite_master WHERE type = 'table' "
	                "ORDER BY name",
	                -1, &tabs, NULL)
	    == SQLITE_OK);
	while (sqlite3_step(tabs) == SQLITE_ROW) {
		char *q = sqlite3_mprintf("SELECT * FROM \"%w\" ORDER BY 1",
		    (const char *) sqlite3_column_text(tabs, 0));
		FUZZ_ASSERT(
		    sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK);
		sqlite3_free(q);
		while (sqlite3_step(st) == SQLITE_ROW)
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const uint8_t *p = sqlite3_column_blob(st, c);
				int n = sqlite3_column_bytes(st, c);
				h = (h ^ (uint64_t) sqlite3_column_type(st, c))
				    * 1099511628211ULL;
				for (int i = 0; i < n; i++)
					h = (h ^ p[i]) * 1099511628211ULL;
			}
		sqlite3_finalize(st);
	}
	sqlite3_finalize(tabs);
	return h;
}

static int64_t
meta_int(sqlite3 *db, const char *name, bool *found)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	FUZZ_ASSERT(sqlite3_prepare_v2(db,
	                "SELECT value FROM _branchsync_meta WHERE name = ?1",
	                -1, &st, NULL)
	    == SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	*found = sqlite3_step(st) == SQLITE_ROW;
	if (*found)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void
apply_page(const proto_changes *page, bool reload)
{
	sqlite3 *db = fresh();
	sqlite3_stmt *st;
	inbox *ib = NULL;
	char err[512];
	uint64_t before;
	bool found;
	proto_err rv;

	if (reload)
		FUZZ_ASSERT(
		    sqlite3_exec(db,
		        "INSERT OR REPLACE INTO _branchsync_meta(name, "
		        "value) VALUES ('reload_table', 'products'), "
		        "('reload_cursor', 0)",
		        NULL, NULL, NULL)
		    == SQLITE_OK);
	FUZZ_ASSERT(inbox_open(db, &conf, &ib, err, sizeof err) == PROTO_OK);
	before = digest(db);
	err[0] = '\0';
	rv = inbox_apply(
	    ib, page, reload ? "products" : NULL, err, sizeof err);
	if (rv != PROTO_OK) {
		FUZZ_ASSERT(rv == PROTO_EDB || rv == PROTO_EINVAL
		    || rv == PROTO_EPROTO);
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(digest(db) == before);
		FUZZ_ASSERT(sqlite3_get_autocommit(db));
	} else if (!reload)
		FUZZ_ASSERT(meta_int(db, "down_cursor", &found) == page->cursor
		    && found);
	else if (page->more)
		FUZZ_ASSERT(
		    meta_int(db, "reload_cursor", &found) == page->cursor
		    && found);
	else
		FUZZ_ASSERT(
		    meta_int(db, "reload_table", &found) == 0 && !found);
	/* Nothing was captured, and the guard row is gone. */
	FUZZ_ASSERT(sqlite3_prepare_v2(db,
	                "SELECT (SELECT count(*) FROM _branchsync_log) "
	                "+ (SELECT count(*) FROM _branchsync_guard)",
	                -1, &st, NULL)
	    == SQLITE_OK);
	FUZZ_ASSERT(sqlite3_step(st) == SQLITE_ROW);
	FUZZ_ASSERT(sqlite3_column_int64(st, 0) == 0);
	sqlite3_finalize(st);
	inbox_close(ib);
	FUZZ_ASSERT(sqlite3_close(db) == SQLITE_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_limits lim;
	proto_msg *m = NULL;
	proto_env env;
	char err[256];

	agent_config_limits(&conf, &lim);
	/* Version 2 as agent/hubclient.c reads it (the MAC, which a fuzzer
	 * cannot forge, taken as checked); version 1 too, for the page
	 * decoder is the same. */
	if (proto_env_decode(data, size, &lim, &env, err, sizeof err)
	    != PROTO_OK)
		return 0;
	if (env.version == PROTO_VERSION
	        ? proto_body_decode(&env, &lim, &m, err, sizeof err)
	        : proto_msg_decode(data, size, &lim, &m, err, sizeof err))
		return 0;
	if (m->type == PROTO_CHANGES)
		apply_page(&m->u.changes, (fuzz_hash(data, size) & 3) == 0);
	proto_msg_free(m);
	return 0;
}
