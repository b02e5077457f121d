/*
 * catalog.h: what PostgreSQL says about the allow-listed target tables.
 *
 * Loaded once at startup from pg_attribute (names, types via format_type)
 * and pg_index (primary key) and shared read-only by all workers. An up
 * table must have its branch column (branch_column, "branch_id" by
 * default), of an integer type, in its primary key (and its
 * till_column, if set, of an integer or text type); a down table needs a
 * primary key, and its scope column (if any) must be an integer column.
 * For a down table the catalog also fixes the layout sent to branches:
 * the primary key columns minus the scope column first, in key order,
 * then the other columns minus the scope column, in attnum order. Only
 * names found here are ever put into SQL, always quoted, so a PUSH can
 * never name a table or column the operator did not allow.
 */
#ifndef HUB_CATALOG_H
#define HUB_CATALOG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "proto/err.h"

/*
 * A foreign key of an up table to another up table of the allow-list:
 * child column cols[i] references parent column pcols[i] (indexes into
 * the cols of either table). Used to name the rejected parent of an
 * event that fails a foreign key.
 */
typedef struct {
	size_t parent; /* index into catalog.tables */
	size_t *cols;  /* child columns */
	size_t *pcols; /* referenced parent columns */
	size_t n;      /* columns in the key */
} catalog_fk;

/* One column of a target table. */
typedef struct {
	char *name;   /* attname */
	char *quoted; /* name as a quoted identifier */
	char *type;   /* format_type without typmod, e.g. "bigint" */
	bool in_pk;   /* part of the primary key */
	int pk_pos;   /* 1-based position in the primary key, 0 if not */
} catalog_col;

/* One allow-listed target table. */
typedef struct {
	const hub_table_config *cfg; /* the allow-list entry (borrowed) */
	char *quoted;                /* "schema"."table" */
	catalog_col *cols;           /* columns in attnum order */
	size_t ncols;                /* number of columns */
	size_t npk;                  /* PK columns, branch column included */
	int scope;               /* down: index of the scope column, or -1 */
	size_t *send;            /* down: column indexes in sending order */
	const char **send_names; /* down: their names (borrowed from cols) */
	size_t nsend;            /* down: number of columns sent */
	size_t nkey;             /* down: key columns, first in send */
	int till;                /* up: index of till_column, or -1 */
	bool till_int;           /* up: till_column is an integer (the till
	                            id), else text (the till code) */
	catalog_fk *fks;         /* up: foreign keys to other up tables */
	size_t nfks;             /* number of fks */
	int branch;              /* up: index of the branch column */
} catalog_table;

typedef struct {
	catalog_table *tables; /* one per hub_config table, same order */
	size_t ntables;        /* number of tables */
} catalog;

/*
 * catalog_load reads every table of conf's allow-list (only the down
 * tables if down_only; the others are then left empty). Each must exist;
 * an up table must have its branch_column (of an integer type) and a
 * primary key that contains it and at least one more column; a down table must
 * have a primary key with a column besides the scope column, and a scope
 * column of an integer type; an up table with "conflict = last_writer_wins"
 * must have its conflict_column. Up tables also get their foreign keys to
 * other up tables. Returns PROTO_OK and a catalog the caller frees with
 * catalog_free, or PROTO_EINVAL (a table fails those checks) or PROTO_EDB,
 * with the reason in err. The catalog borrows conf, which must outlive it.
 */
proto_err catalog_load(PGconn *conn, const hub_config *conf, bool down_only,
    catalog **out, char *err, size_t errlen);

/* catalog_free frees a catalog; catalog_free(NULL) does nothing. */
void catalog_free(catalog *cat);

/* catalog_find returns the table for a branch-side name, or NULL. */
const catalog_table *catalog_find(const catalog *cat, const char *name);

/* catalog_col_find returns the index of column name in t, or -1. */
int catalog_col_find(const catalog_table *t, const char *name);

/*
 * catalog_quote returns name as a quoted SQL identifier ("" doubled),
 * which the caller frees.
 */
char *catalog_quote(const char *name);

#endif /* HUB_CATALOG_H */
