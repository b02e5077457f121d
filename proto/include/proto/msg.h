/*
 * msg.h: the branchsync wire protocol, version 2 (and version 1, which a
 * hub may still read from agents being upgraded).
 *
 * VERSION 2. A request is one msgpack array of four elements; so is an
 * answer:
 *
 *   [ version, type, auth, body ]
 *
 *   version  uint     PROTO_VERSION (2).
 *   type     uint     one of proto_type below.
 *   auth     map      string keys: who sends, and the MACs (below).
 *   body     bin      the msgpack bytes of the body map: string keys, the
 *                     fields of that type, in any order.
 *
 * The body travels as bytes so that the hub checks the MAC over exactly
 * those bytes before it decodes any of them (proto_env_decode reads the
 * envelope and the auth map without allocating; proto_body_decode decodes
 * the body afterwards).
 *
 * auth of a request (HELLO, PUSH, PULL):
 *   key       type      meaning                                     since
 *   "branch"  str       branch code: 1..64 of [A-Za-z0-9_.-]         v2
 *   "till"    str       optional: till code, same rule; absent for   v2
 *                       the branch's own key
 *   "ctr"     int       request counter, >= 0; the hub accepts on    v2
 *                       one connection only a counter above the last
 *                       one it accepted there
 *   "nonces"  array     of 0 to PROTO_MAX_NONCES bin of              v2
 *                       PROTO_NONCE_BYTES: nonces hubs issued to this
 *                       agent's connections; the hub requires the one
 *                       it issued to the connection the request came on
 *   "mac"     bin       PROTO_MAC_BYTES: proto_req_mac (proto/auth.h)  v2
 *                       with the credential's secret, over type, ctr,
 *                       branch, till, nonces and the SHA-256 of body
 *
 * auth of an answer (WELCOME, ACK, CHANGES, ERROR):
 *   "mac"     bin       PROTO_MAC_BYTES: proto_rep_mac over type, the  v2
 *                       request's mac and the SHA-256 of body; required
 *                       except in an ERROR sent before the request was
 *                       authenticated
 *   "nonce"   bin       PROTO_NONCE_BYTES, optional: in an ERROR      v2
 *                       PROTO_ENONCE, the nonce of the connection the
 *                       request came on (sign again with it)
 *
 * A key of the other direction is refused; an unknown key is skipped.
 * The branch key itself never travels in version 2.
 *
 * VERSION 1 (plain): [1, type, body-map], the body carrying "branch",
 * "key" (the secret itself) and "till" as listed below. proto_msg_encode
 * and proto_msg_decode read and write it; a hub reads it only when told
 * to (accept_plain_keys) and otherwise answers a version 1 ERROR.
 *
 * Compatibility rule: within a version, a writer may add new keys to a
 * body or auth map; a reader skips keys it does not know (bounded by the
 * nesting and size limits). Removing a key, changing its type or its
 * meaning needs a new version. The body fields below are those of both
 * versions unless marked "v1 only".
 *
 * Values carried in rows are one of: nil, bool, int (int64 range), float64
 * (float32 is widened), str (UTF-8 text), bin. Nothing else is accepted in a
 * row: a nested array or map, or an ext, is a protocol error.
 *
 * HELLO (agent -> hub), type 1: open a session for one log.
 *   key            type  meaning                                  since
 *   "branch"       str   v1 only: branch code, e.g. "b17"         v1
 *   "key"          str   v1 only: the branch's secret key         v1
 *   "log_id"       str   id of the branch's log (32 hex digits)    v1
 *   "high_seq"     int   highest seq in the local log             v1
 *   "version"      str   agent version                            v1
 *   "queue_events" int   events waiting in the local log          v1
 *   "queue_bytes"  int   approximate bytes waiting                v1
 *   "oldest_age_s" int   age of the oldest waiting event, seconds v1
 *   "till"         str   v1 only, optional (added within v1): the  v1
 *                        till (POS file) of the branch this agent serves,
 * e.g. "pc1"; absent for an agent that uses the branch's own key. The key
 * is then the till's key: the hub takes the till from the credential
 * (branch, till, key), never from this field alone. Version 2 names the
 * till in the auth map.
 *
 * WELCOME (hub -> agent), type 2: answer to HELLO.
 *   "watermark"    int   last seq applied for (branch, log_id); 0 if none
 *   "tag"          int   tag of the event at the watermark; 0 if none
 *   "version"      str   hub version
 *   "max_events"   int   most events the hub accepts in one PUSH
 *   "max_bytes"    int   largest message the hub accepts, bytes
 *   "retry"        array of int: seqs of this log whose rejects an
 *                  operator asked to retry (send them again)
 *   "discard"      array of int: seqs of this log whose rejects an
 *                  operator discarded (drop them)
 *                  Both lists are strictly increasing and at most
 *                  max_outcomes long; either may be empty.
 *
 * PUSH (agent -> hub), type 3: a batch of events in seq order.
 *   "log_id", "queue_events", "queue_bytes", "oldest_age_s",
 *   and in v1 "branch", "key", "till" (optional)  as in HELLO
 *   "tables"       array of [name str, columns array of str, nkey int]:
 *                  the tables the events refer to; the first nkey columns
 *                  are the key columns
 *   "events"       array of [seq int, tag int, table int, op int,
 *                  values array]: table indexes "tables"; op is a
 *                  proto_op or PROTO_WIRE_UPSERT_AHEAD; values holds all
 *                  columns of the table for an upsert and only the nkey
 *                  key columns for PROTO_OP_DELETE and PROTO_OP_NONE
 *
 * ACK (hub -> agent), type 4: the batch is committed in PostgreSQL.
 *   "log_id"       str   the log the batch belonged to
 *   "watermark"    int   last seq now applied for (branch, log_id)
 *   "tag"          int   tag of the event at the watermark
 *   "applied"      int   events applied by this PUSH
 *   "duplicates"   int   events skipped as already applied
 *   "outcomes"     array of [seq int, code int, reason str]: only the
 *                  events whose outcome is not plain success
 *
 * PULL (agent -> hub), type 5: ask for master-data changes after a cursor.
 *   "log_id", "queue_events", "queue_bytes", "oldest_age_s",
 *   and in v1 "branch", "key", "till" (optional)  as in HELLO
 *   "cursor"       int   the id of the last change applied; 0 for all
 *   "table"        str   "" for every table, or one branch-side table
 *                        name to receive only that table (a reload)
 *   "max_rows"     int   most changes in the answer
 *   "max_bytes"    int   stop adding changes after about this many bytes
 *
 * CHANGES (hub -> agent), type 6: one page of the change feed, in id order.
 *   "cursor"       int   id of the last change in this page (the next
 *                        PULL's cursor); the request's cursor if empty
 *   "more"         bool  more changes follow: pull again at once
 *   "tables"       array of [name str, columns array of str, nkey int]:
 *                  as in PUSH; name is the branch-side table
 *   "changes"      array of [id int, table int, op int, values array]:
 *                  op is PROTO_OP_UPSERT (values: all columns) or
 *                  PROTO_OP_DELETE (values: the nkey key columns)
 *
 * ERROR (hub -> agent), type 7: the request was not applied.
 *   "code"         int   a proto_err; PROTO_ENONCE (v2): sign the
 *                        request again with the nonce in the auth map
 *   "message"      str   human-readable reason
 *   "retry"        bool  true if the same request may succeed later
 *
 * NUDGE (hub pub socket -> agents' sub sockets): not a msgpack message but
 * a topic: the bytes "b:" + branch code + "\n", or "*\n" for all branches.
 * It only says "pull now"; agents also pull every pull_interval_ms.
 *
 * Limits (proto_limits): total message size, events per batch, tables per
 * batch, columns per row, bytes per str/bin value (the body bin of version
 * 2 is bounded by the message size only), nesting depth. A decoder never
 * allocates more than a small constant times the input size, because
 * every declared count is checked against the bytes that remain; the
 * envelope decoder allocates nothing.
 */
#ifndef PROTO_MSG_H
#define PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/err.h"

#define PROTO_VERSION       2 /* what agents and hubs write */
#define PROTO_VERSION_PLAIN 1 /* the key in clear: see above */

#define PROTO_NONCE_BYTES 16  /* a hub-issued nonce */
#define PROTO_MAC_BYTES   32  /* HMAC-SHA256 */
#define PROTO_MAX_NONCES  8   /* nonces in one request's auth */
#define PROTO_CODE_MAX    64  /* bytes of a branch or till code */
#define PROTO_NAME_MAX    256 /* bytes of any name (see docs/protocol.md) */

typedef enum {
	PROTO_HELLO = 1,
	PROTO_WELCOME = 2,
	PROTO_PUSH = 3,
	PROTO_ACK = 4,
	PROTO_PULL = 5,
	PROTO_CHANGES = 6,
	PROTO_ERROR = 7,
} proto_type;

/* Operation of an event. */
typedef enum {
	PROTO_OP_NONE = 0,   /* row gone at send time; a later event deletes */
	PROTO_OP_UPSERT = 1, /* insert or update: values hold the whole row */
	PROTO_OP_DELETE = 2, /* delete: values hold the key columns */
} proto_op;

/*
 * On the wire only (PUSH): an UPSERT whose values are ahead of the event,
 * because a later event of the same row is pending at the branch. Decoded
 * as PROTO_OP_UPSERT with proto_event.ahead set.
 */
#define PROTO_WIRE_UPSERT_AHEAD 3

/* Outcome codes in an ACK, for events that were not plainly applied. */
typedef enum {
	PROTO_OUT_DUPLICATE = 1, /* already applied earlier; skipped */
	PROTO_OUT_CONFLICT = 2,  /* kept the server's row; conflict recorded */
	PROTO_OUT_REJECTED = 3,  /* not applied; reason says why */
} proto_outcome_code;

typedef enum {
	PROTO_NIL = 0,
	PROTO_BOOL,
	PROTO_INT,
	PROTO_FLOAT,
	PROTO_STR,
	PROTO_BIN,
} proto_vtype;

/* One scalar value of a row. */
typedef struct {
	proto_vtype type; /* which member of u is set */
	uint32_t len;     /* length in bytes of u.s / u.p */
	union {
		bool b;        /* PROTO_BOOL */
		int64_t i;     /* PROTO_INT */
		double f;      /* PROTO_FLOAT */
		const char *s; /* PROTO_STR: NUL-terminated, may hold NULs */
		const uint8_t *p; /* PROTO_BIN */
	} u;
} proto_value;

/* Limits a decoder enforces. Zero fields mean "use the default". */
typedef struct {
	size_t max_msg_bytes;     /* whole message; default 16 MiB */
	uint32_t max_events;      /* events in a PUSH, changes in a CHANGES;
	                             default 10000 */
	uint32_t max_tables;      /* tables in a PUSH or CHANGES; default 64 */
	uint32_t max_columns;     /* columns per table/row; default 256 */
	uint32_t max_value_bytes; /* one str or bin; default 1 MiB */
	uint32_t max_outcomes;    /* outcomes in one ACK, seqs in each of a
	                             WELCOME's retry and discard; default
	                             10000 */
	uint32_t max_depth;       /* nesting of skipped values; default 8 */
} proto_limits;

/* Fields every agent request carries. */
typedef struct {
	const char *branch;   /* branch code (v2: from the auth map) */
	const char *key;      /* branch secret: written and read in v1
	                         only; NULL when decoded from v2 */
	const char *log_id;   /* 32 hex digits */
	int64_t queue_events; /* events waiting at the branch */
	int64_t queue_bytes;  /* bytes waiting at the branch */
	int64_t oldest_age_s; /* age of the oldest waiting event */
	const char *till;     /* till code, or NULL: the branch's own key
	                         (optional on the wire: an older
	                         agent does not send it; v2: from the
	                         auth map) */
} proto_agent_hdr;

typedef struct {
	proto_agent_hdr hdr; /* who is asking */
	int64_t high_seq;    /* highest seq in the local log */
	const char *version; /* agent version string */
} proto_hello;

typedef struct {
	int64_t watermark;   /* last applied seq for (branch, log_id) */
	int64_t tag;         /* tag of the event at watermark */
	const char *version; /* hub version string */
	int64_t max_events;  /* most events per PUSH the hub accepts */
	int64_t max_bytes;   /* largest message the hub accepts */
	uint32_t nretry;     /* number of seqs in retry */
	int64_t *retry;      /* rejected seqs to retry, increasing; may be
	                        NULL when nretry is 0 */
	uint32_t ndiscard;   /* number of seqs in discard */
	int64_t *discard;    /* rejected seqs discarded, increasing; may be
	                        NULL when ndiscard is 0 */
} proto_welcome;

typedef struct {
	const char *name;  /* branch-side table name */
	uint32_t ncols;    /* number of columns */
	const char **cols; /* column names; key columns first */
	uint32_t nkey;     /* 1 <= nkey <= ncols */
} proto_table;

typedef struct {
	int64_t seq;       /* position in the branch log, increasing */
	int64_t tag;       /* random tag the capture trigger wrote */
	uint32_t table;    /* index into proto_push.tables */
	proto_op op;       /* what to do */
	uint32_t nvals;    /* ncols for UPSERT, nkey otherwise */
	proto_value *vals; /* the values, in the table's column order */
	bool ahead;        /* UPSERT of a PUSH only: the values were read
	                    * after a later write of the row, whose own event
	                    * is pending (the hub may skip it if it fails) */
	int64_t rowid;     /* the agent's own note, never encoded: the
	                    * SQLite rowid the values were read at, 0 unknown */
} proto_event;

typedef struct {
	proto_agent_hdr hdr; /* who is pushing */
	uint32_t ntables;    /* number of tables */
	proto_table *tables; /* tables referenced by events */
	uint32_t nevents;    /* number of events */
	proto_event *events; /* events in increasing seq order */
} proto_push;

typedef struct {
	int64_t seq;             /* the event */
	proto_outcome_code code; /* what happened to it */
	const char *reason;      /* why; "" when there is nothing to add */
} proto_outcome;

typedef struct {
	const char *log_id;      /* the log the batch belonged to */
	int64_t watermark;       /* last applied seq, now committed */
	int64_t tag;             /* tag of the event at watermark */
	int64_t applied;         /* events applied by this request */
	int64_t duplicates;      /* events skipped as already applied */
	uint32_t noutcomes;      /* number of outcomes */
	proto_outcome *outcomes; /* non-success outcomes in seq order */
} proto_ack;

typedef struct {
	int64_t code;        /* a proto_err */
	const char *message; /* human-readable reason */
	bool retry;          /* the same request may succeed later */
} proto_error;

typedef struct {
	proto_agent_hdr hdr; /* who is asking */
	int64_t cursor;      /* last change id applied; 0 for all */
	const char *table;   /* "" for all tables, or one table (reload) */
	int64_t max_rows;    /* most changes in the answer */
	int64_t max_bytes;   /* about this many bytes at most */
} proto_pull;

/*
 * One page of changes. A change reuses proto_event: seq is the change id,
 * tag is 0 and not sent, op is PROTO_OP_UPSERT or PROTO_OP_DELETE.
 */
typedef struct {
	int64_t cursor;       /* id of the last change in the page */
	bool more;            /* more changes follow */
	uint32_t ntables;     /* number of tables */
	proto_table *tables;  /* tables referenced by changes */
	uint32_t nchanges;    /* number of changes */
	proto_event *changes; /* changes in increasing id order */
} proto_changes;

/* A message. Decoded messages own all their memory (see proto_msg_free). */
typedef struct proto_msg {
	proto_type type; /* selects the member of u */
	union {
		proto_hello hello;
		proto_welcome welcome;
		proto_push push;
		proto_ack ack;
		proto_pull pull;
		proto_changes changes;
		proto_error error;
	} u;
	struct proto_arena *arena; /* memory of a decoded message, or NULL */
} proto_msg;

/* A growable byte buffer. Zero-initialize, or use proto_buf_init. */
typedef struct {
	uint8_t *data; /* bytes; owned by the buffer */
	size_t len;    /* bytes used */
	size_t cap;    /* bytes allocated */
} proto_buf;

/* An arena: many small allocations freed at once. */
typedef struct proto_arena proto_arena;

/* The auth map of a version 2 message (see the top of this file). */
typedef struct {
	char branch[PROTO_CODE_MAX + 1]; /* request: branch code */
	char till[PROTO_CODE_MAX + 1];   /* request: till code, "" none */
	int64_t ctr;                     /* request: counter, >= 0 */
	uint32_t nnonces;                /* request: nonces used */
	uint8_t nonces[PROTO_MAX_NONCES][PROTO_NONCE_BYTES]; /* request */
	bool has_mac;                     /* mac is set (always in a
	                                     request) */
	uint8_t mac[PROTO_MAC_BYTES];     /* the MAC */
	bool has_nonce;                   /* answer: nonce is set */
	uint8_t nonce[PROTO_NONCE_BYTES]; /* answer: the connection's
	                                     nonce (ERROR PROTO_ENONCE) */
} proto_auth;

/* A message's envelope, read without decoding its body. */
typedef struct {
	int version;         /* PROTO_VERSION or PROTO_VERSION_PLAIN */
	proto_type type;     /* version 2: the type; version 1: 0 */
	proto_auth auth;     /* version 2: the auth map */
	const uint8_t *body; /* version 2: the body map's bytes; version 1:
	                        the whole message (proto_msg_decode reads
	                        it). Borrowed from the decoded input */
	size_t body_len;     /* bytes at body */
} proto_env;

/* proto_request_type says whether type is sent by agents (HELLO, PUSH,
 * PULL), whose auth map is a request's. */
bool proto_request_type(int type);

/* proto_code_valid says whether code may be a branch or till code: 1 to
 * PROTO_CODE_MAX letters, digits, "_", "-" or ".". */
bool proto_code_valid(const char *code);

/* proto_limits_default fills lim with the default limits. */
void proto_limits_default(proto_limits *lim);

/* proto_limits_resolve copies in (may be NULL) to out, each zero field
 * replaced by its default: the limits a decoder given in enforces. */
void proto_limits_resolve(const proto_limits *in, proto_limits *out);

/*
 * proto_msg_encode appends the version 1 encoding of m, [1, type, body],
 * to out. Returns PROTO_OK, PROTO_ENOMEM, or PROTO_EINVAL (with a reason
 * in err) if m is inconsistent, e.g. an event's table index is out of
 * range or its value count does not match its table. The caller keeps
 * ownership of m and out.
 */
proto_err proto_msg_encode(
    const proto_msg *m, proto_buf *out, char *err, size_t errlen);

/*
 * proto_msg_decode parses len bytes at buf, a version 1 message, into a
 * new message. lim may be NULL for the defaults. Returns PROTO_OK and sets
 * *out, which the caller frees with proto_msg_free; the message copies
 * what it needs, so buf may be freed at once. On error *out is NULL, err
 * holds a reason, and the result is PROTO_EPROTO (malformed),
 * PROTO_EVERSION (another version), PROTO_ETOOBIG (a limit exceeded) or
 * PROTO_ENOMEM. Never reads outside buf[0..len).
 */
proto_err proto_msg_decode(const uint8_t *buf, size_t len,
    const proto_limits *lim, proto_msg **out, char *err, size_t errlen);

/*
 * proto_body_encode appends the version 2 body map of m to out (the v1
 * only fields left out: hdr.branch, key and till may be NULL). Errors and
 * ownership as proto_msg_encode.
 */
proto_err proto_body_encode(
    const proto_msg *m, proto_buf *out, char *err, size_t errlen);

/*
 * proto_env_decode reads the envelope of the len bytes at buf under lim
 * (NULL: the defaults) into *env, allocating nothing. Version 2: checks
 * the shape, the type, the auth map for that type's direction and that
 * nothing follows the body, and points env->body into buf. Version 1:
 * reads only the version (env->type 0, env->body = buf, the whole
 * message). Errors as proto_msg_decode (no PROTO_ENOMEM). *env is valid
 * for as long as buf.
 */
proto_err proto_env_decode(const uint8_t *buf, size_t len,
    const proto_limits *lim, proto_env *env, char *err, size_t errlen);

/*
 * proto_env_encode appends [2, type, auth, body] for env (version and
 * the auth keys of the other direction are ignored) to out. PROTO_EINVAL
 * with a reason for an invalid branch or till code, too many nonces, an
 * unknown type, or an answer without a MAC that is not an ERROR;
 * PROTO_ENOMEM.
 */
proto_err proto_env_encode(
    const proto_env *env, proto_buf *out, char *err, size_t errlen);

/*
 * proto_env_encode_head appends what proto_env_encode would, but the
 * body's own bytes: the caller appends env->body_len of them after it (a
 * request goes out as head and body copied once into the message sent).
 * Errors as proto_env_encode.
 */
proto_err proto_env_encode_head(
    const proto_env *env, proto_buf *out, char *err, size_t errlen);

/*
 * proto_body_decode decodes the version 2 body of env (from
 * proto_env_decode, or made by hand) under lim, as proto_msg_decode does a
 * whole message. A request's hdr.branch and hdr.till are copied from
 * env->auth, never read from the body; hdr.key is NULL. PROTO_EINVAL if
 * env is not version 2 or its type unknown.
 */
proto_err proto_body_decode(const proto_env *env, const proto_limits *lim,
    proto_msg **out, char *err, size_t errlen);

/* proto_msg_free frees a decoded message. proto_msg_free(NULL) does nothing.
 */
void proto_msg_free(proto_msg *m);

/* proto_type_name returns "hello", "push", ... or "unknown". */
const char *proto_type_name(int type);

/*
 * proto_utf8_len returns the length (1 to 4) of the UTF-8 sequence that
 * starts s (n bytes available), or 0 if it is not valid UTF-8 as
 * PostgreSQL reads it: overlong forms, surrogates and code points above
 * U+10FFFF are invalid. A NUL byte is a valid sequence of length 1.
 */
size_t proto_utf8_len(const uint8_t *s, size_t n);

/* proto_value_eq reports whether two values have equal type and content. */
bool proto_value_eq(const proto_value *a, const proto_value *b);

void proto_buf_init(proto_buf *b);
/* proto_buf_reserve makes room for n more bytes: PROTO_OK or PROTO_ENOMEM. */
proto_err proto_buf_reserve(proto_buf *b, size_t n);
proto_err proto_buf_append(proto_buf *b, const void *p, size_t n);
void proto_buf_reset(proto_buf *b); /* len = 0, keeps the memory */
void proto_buf_fini(proto_buf *b);  /* frees the memory */

/* proto_arena_new returns an empty arena, or NULL when out of memory. */
proto_arena *proto_arena_new(void);
/* proto_arena_alloc returns n zeroed bytes aligned for any type, or NULL. */
void *proto_arena_alloc(proto_arena *a, size_t n);
/* proto_arena_strndup copies n bytes and a NUL, or returns NULL. */
char *proto_arena_strndup(proto_arena *a, const char *s, size_t n);
/* proto_arena_reset frees all allocations but keeps one block for reuse. */
void proto_arena_reset(proto_arena *a);
/* proto_arena_free frees everything; proto_arena_free(NULL) does nothing. */
void proto_arena_free(proto_arena *a);

#endif /* PROTO_MSG_H */
