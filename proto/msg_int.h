/*
 * msg_int.h: the message tables shared by the encoder (msg.c) and the
 * decoder (msgdec.c). NOT for use outside proto/.
 *
 * Each message type's body is one table of fields (name, kind, offset in
 * proto_msg); both directions walk the same table, and the same check
 * functions validate a message before it is encoded and after it is
 * decoded.
 */
#ifndef PROTO_MSG_INT_H
#define PROTO_MSG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

typedef enum {
	FK_INT,      /* int64_t */
	FK_BOOL,     /* bool */
	FK_STR,      /* const char *, no NUL inside: messages, reasons */
	FK_NAME,     /* const char *, a name (see name_check): branch, key,
	                log_id, versions, table names */
	FK_TABLES,   /* uint32_t count, proto_table *array */
	FK_EVENTS,   /* uint32_t count, proto_event *array: PUSH events */
	FK_CHANGES,  /* uint32_t count, proto_event *array: CHANGES changes */
	FK_OUTCOMES, /* uint32_t count, proto_outcome *array */
	FK_SEQS,     /* uint32_t count, int64_t *array: strictly increasing
	                seqs, at most max_outcomes */
} field_kind;

/* One key of a body map. */
typedef struct {
	const char *name; /* the key */
	field_kind kind;  /* msgpack type and C type */
	size_t off;       /* offset of the C field (of the count for arrays) */
	size_t aoff;      /* arrays: offset of the element pointer */
	bool optional;    /* FK_NAME only: may be absent (NULL), e.g. "till" */
	bool plain;       /* version 1 only ("branch", "key", "till"): in
	                     version 2 they travel in the auth map and such a
	                     key in a body is unknown, so skipped */
} field_desc;

/* An event list: PUSH events and CHANGES changes share proto_event and
 * differ in what this says. */
typedef struct {
	const char *what; /* the body key, for limit messages */
	const char *item; /* one element, for error contexts */
	uint32_t tuple;   /* elements of one event array */
	bool has_tag;     /* the tag is on the wire (else 0) */
	proto_op op_lo;   /* lowest op allowed; PROTO_OP_DELETE is top */
	bool ahead;       /* PROTO_WIRE_UPSERT_AHEAD allowed too */
	bool increasing;  /* seq must strictly increase */
} evlist_desc;

typedef struct {
	const field_desc *fields; /* keys of the body, required unless
	                             marked optional */
	size_t nfields;           /* number of keys */
} body_desc;

/* FIELD returns a pointer of type T to the field at off in m. */
#define FIELD(T, m, off) ((T *) (void *) ((char *) (m) + (off)))

/* The event lists of PUSH and CHANGES. */
extern const evlist_desc msg_push_events;
extern const evlist_desc msg_changes_events;

/* msg_body_for returns the body of a message type, or NULL if unknown. */
const body_desc *msg_body_for(int64_t type);

/* msg_field_on says whether field f belongs to a body of version. */
bool msg_field_on(const field_desc *f, int version);

/*
 * msg_code_check accepts a branch or till code of an auth map: 1 to
 * PROTO_CODE_MAX letters, digits, "_", "-" or "."; false with the reason
 * in err otherwise.
 */
bool msg_code_check(const uint8_t *s, size_t len, char *err, size_t errlen);

/*
 * msg_name_check accepts a name (branch, key, log id, version, table or
 * column): valid UTF-8 without control characters; false with the reason
 * in err otherwise.
 */
bool msg_name_check(const uint8_t *s, size_t len, char *err, size_t errlen);

/*
 * msg_check checks the parts of a message that span fields or elements
 * (seq lists increasing; PUSH, ACK and CHANGES consistent), the same
 * before encoding and after decoding. false with the reason in err.
 */
bool msg_check(const proto_msg *m, char *err, size_t errlen);

#endif /* PROTO_MSG_INT_H */
