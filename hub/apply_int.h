/*
 * apply_int.h: what the files of the apply module share, and nothing
 * outside it may include: the per-worker context, the mapped table
 * shapes, and the functions one file of the module calls in another.
 *
 *   apply.c      the batch transaction: watermark, collapse, fast path,
 *                rejects and status bookkeeping (apply_*)
 *   applymap.c   the shape-to-SQL compiler and its statements (applymap_*)
 *   applyslow.c  the slow path: event by event under savepoints, foreign
 *                key diagnosis, constraint conflicts (applyslow_*)
 *   welcome.c    the WELCOME answer to a HELLO (welcome_*)
 *
 * The public interface is apply.h.
 */
#ifndef HUB_APPLY_INT_H
#define HUB_APPLY_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "apply.h"
#include "pgval.h"
#include "util.h"

/* Cached table shapes per connection; a hostile agent cannot grow it. */
#define MAP_CACHE_MAX 256

/* A pushed table shape mapped to a target table. */
typedef struct {
	char *name;       /* branch-side table name */
	char *sig;        /* column names and nkey, one per line: the shape */
	char *reason;     /* non-NULL: every event of this shape is rejected */
	char *upsert_sql; /* INSERT ... SELECT FROM unnest ... ON CONFLICT */
	char *delete_sql; /* DELETE ... WHERE (key) IN (SELECT unnest ...) */
	char *detect_sql; /* conflict policies: records the rows not written */
	const catalog_table *t; /* the target (NULL if reason is set) */
	char **names;   /* per pushed column: its target column's name, after
	                   the table's "columns" renames (rejects, conflicts) */
	int *idx;       /* per pushed column: index in t->cols, -1 if unsent */
	bool *send;     /* per pushed column: passed to PostgreSQL */
	uint32_t ncols; /* pushed columns */
	uint32_t nsend; /* columns with send set */
	uint32_t nkey;  /* key columns: the first nkey */
} apply_map;

/* One (table, key) after collapsing. */
typedef struct {
	uint32_t table; /* index into the push's tables */
	uint32_t ev;    /* index of the key's last event */
} apply_slot;

/* One rejected event, or one event recorded as a conflict. */
typedef struct {
	uint32_t ev;  /* index into the push's events */
	char *reason; /* why (owned) */
} apply_reject;

struct apply_ctx {
	const hub_config *conf;   /* borrowed */
	const catalog *cat;       /* borrowed */
	PGconn *conn;             /* borrowed; NULL while disconnected */
	apply_map **cache;        /* shapes seen on this connection */
	size_t ncache;            /* entries in cache */
	apply_map **pmaps;        /* per table of the current push */
	size_t pmaps_cap;         /* allocated entries of pmaps */
	apply_slot *slots;        /* collapsed keys, first appearance order */
	size_t nslots, slots_cap; /* used, allocated */
	uint32_t *ht;             /* open addressing: slot index + 1 */
	size_t ht_cap;            /* power of two */
	uint32_t *evs;            /* events of one statement */
	size_t evs_cap;           /* allocated entries of evs */
	uint32_t *torder;         /* tables in order of first appearance */
	size_t ntorder, torder_cap;   /* used, allocated */
	apply_reject *rejects;        /* rejected events of the current push */
	size_t nrejects, rejects_cap; /* used, allocated */
	apply_reject *confl;          /* events recorded as conflicts */
	size_t nconfl, confl_cap;     /* used, allocated */
	uint32_t *redo;               /* events <= watermark applied again */
	size_t nredo, redo_cap;       /* used, allocated */
	int64_t *wlist;               /* WELCOME's retry and discard seqs */
	size_t wlist_cap;             /* allocated entries of wlist */
	proto_outcome *outcomes;      /* the ACK's outcomes */
	size_t outcomes_cap;          /* allocated entries of outcomes */
	strbuf *arrays;               /* one array literal per parameter */
	size_t narrays;               /* allocated entries of arrays */
	const char **params;          /* parameter pointers */
	size_t params_cap;            /* allocated entries of params */
	strbuf scratch;               /* signatures, JSON */
	char branch[16];              /* branch id as text ($1) */
	char till_id[16];             /* till id as text, "0" for none */
	char till[72];                /* till code, "" for none */
	int64_t wm_seq, wm_tag;       /* watermark read under lock */
	uint32_t first_new;           /* first event above the watermark */
	int64_t applied;              /* events applied by the last commit */
	bool slow;                    /* running the slow path */
};

/* ---- apply.c --------------------------------------------------------- */

/* apply_reject_add records event e as rejected; ctx takes reason. */
void apply_reject_add(apply_ctx *ctx, uint32_t e, char *reason);

/* apply_conflict_add records event e as a conflict; ctx takes reason. */
void apply_conflict_add(apply_ctx *ctx, uint32_t e, char *reason);

/* apply_conflicts_truncate forgets the conflicts recorded after the first n.
 */
void apply_conflicts_truncate(apply_ctx *ctx, size_t n);

/*
 * apply_key_hash hashes an event's table index and its n key values for
 * the collapse table (SipHash-2-4 under a per-process random key).
 */
uint64_t apply_key_hash(uint32_t table, const proto_value *v, uint32_t n);

/* apply_event_find returns the index of the event with seq, or p->nevents. */
uint32_t apply_event_find(const proto_push *p, int64_t seq);

/*
 * apply_sql_run runs a parameterless command on ctx's connection.
 * PROTO_EDB with sqlstate and err filled on failure.
 */
proto_err apply_sql_run(
    apply_ctx *ctx, const char *sql, char *sqlstate, char *err, size_t errlen);

/*
 * apply_watermark_read reads the watermark seq and tag of (ctx's branch,
 * log_id) into *seq and *tag, 0 if there is no row; with lock, FOR
 * UPDATE. PROTO_EDB with sqlstate (may be NULL) and err on failure.
 */
proto_err apply_watermark_read(apply_ctx *ctx, const char *log_id, bool lock,
    int64_t *seq, int64_t *tag, char *sqlstate, char *err, size_t errlen);

/* ---- applymap.c ------------------------------------------------------ */

/* applymap_cache_clear frees every cached shape of ctx. */
void applymap_cache_clear(apply_ctx *ctx);

/*
 * applymap_tables_get fills ctx->pmaps with the mapping of every table
 * of the push, from the cache or built (the cache is cleared first if it
 * would overflow). PROTO_EPROTO with err if the push has more tables
 * than the cache holds.
 */
proto_err applymap_tables_get(
    apply_ctx *ctx, const proto_push *p, char *err, size_t errlen);

/*
 * applymap_event_reason returns why event e (its table mapped) is
 * rejected before any SQL, as a string the caller frees, or NULL.
 */
char *applymap_event_reason(apply_ctx *ctx, const proto_push *p, uint32_t e);

/*
 * applymap_till_sql returns the SQL pieces of a table's till_column (all
 * "" if it has none): ", col" after branch_id in a column list, ", value"
 * after $1 in a select list, and " AND col = value" with the column
 * qualified by prefix. The value is read from the transaction's setting
 * (see set_till in apply.c), so statements keep their parameters and
 * stay cached per shape whatever till sends. The caller frees all three.
 */
void applymap_till_sql(const catalog_table *t, const char *prefix, char **col,
    char **val, char **cond);

/*
 * applymap_event_json writes into b the key (array) or row (object) of
 * ev, an event of shape m, as JSON. A row names the target columns
 * (m->names); with sent_only it holds only the columns passed to
 * PostgreSQL.
 */
void applymap_event_json(strbuf *b, const apply_map *m, const proto_event *ev,
    bool row, bool sent_only);

/*
 * applymap_arrays_open starts k empty array literals in ctx->arrays and
 * makes room for k + 8 parameters.
 */
void applymap_arrays_open(apply_ctx *ctx, size_t k);

/* applymap_arrays_close ends k array literals; params[first + j] = arrays[j].
 */
void applymap_arrays_close(apply_ctx *ctx, size_t k, size_t first);

/* applymap_text_put appends a C string to array literal a as an element. */
void applymap_text_put(strbuf *a, const char *s);

/*
 * applymap_rows_exec runs the upsert (or delete) of table ti for the n
 * events listed in evs, as one statement over unnest() of array
 * literals. A table with a conflict policy first runs its detection
 * statement over the same arrays and records a conflict per row kept
 * out. PROTO_EDB with sqlstate and err on failure.
 */
proto_err applymap_rows_exec(apply_ctx *ctx, const proto_push *p, uint32_t ti,
    const uint32_t *evs, size_t n, bool del, char *sqlstate, char *err,
    size_t errlen);

/* ---- applyslow.c ----------------------------------------------------- */

/*
 * applyslow_run applies the collapsed events in the fast path's order,
 * one at a time under a savepoint, with constraints IMMEDIATE. An event
 * that fails for a reason tied to its data becomes a reject or a
 * conflict; a lost connection or a transient error is returned
 * (PROTO_EDB), since the whole batch must then be retried.
 */
proto_err applyslow_run(apply_ctx *ctx, const proto_push *p, char *sqlstate,
    char *err, size_t errlen);

/* ---- welcome.c ------------------------------------------------------- */

/*
 * welcome_fill fills w for a HELLO on log log_id of ctx's branch: the
 * watermark and tag (0 if unknown), the hub's version and limits, and
 * the retry and discard seq lists (owned by ctx, valid until its next
 * call). PROTO_EDB with the reason in err on failure.
 */
proto_err welcome_fill(apply_ctx *ctx, const char *log_id, proto_welcome *w,
    char *err, size_t errlen);

#endif /* HUB_APPLY_INT_H */
