/*
 * proto_int.h: internals shared by codec.c, msg.c and msgdec.c. NOT for
 * use outside proto/; agent and hub include only proto/msg.h and
 * proto/err.h.
 *
 * codec.c holds the byte-level pieces: the growable buffer, the arena and
 * a bounds-checked msgpack cursor. msg.c encodes messages and msgdec.c
 * decodes them, over the tables of msg_int.h.
 * Encoding uses msgpack-c's packer. Decoding deliberately does not use
 * msgpack-c's unpacker: it allocates per declared count before it has seen
 * the data and has no limits, so a 6-byte input could ask for gigabytes.
 *
 * MSGPACK FORMATS THE CURSOR ACCEPTS
 *
 * Every value starts with one type byte; multi-byte lengths and numbers
 * that follow it are big-endian.
 *
 *   first byte   format        payload after the type byte
 *   0x00..0x7f   positive int  none: the value is the byte itself
 *   0x80..0x8f   fixmap        none: N = low 4 bits, then N key/value pairs
 *   0x90..0x9f   fixarray      none: N = low 4 bits, then N values
 *   0xa0..0xbf   fixstr        N = low 5 bits bytes of UTF-8
 *   0xc0         nil           none
 *   0xc1         (never used)  rejected
 *   0xc2, 0xc3   false, true   none
 *   0xc4..0xc6   bin 8/16/32   N in 1/2/4 bytes, then N bytes
 *   0xc7..0xc9   ext 8/16/32   N in 1/2/4 bytes, type byte, N bytes: only
 *                              skipped inside unknown keys, never a value
 *   0xca, 0xcb   float 32/64   IEEE 754 in 4/8 bytes (float32 is widened)
 *   0xcc..0xcf   uint 8..64    1/2/4/8 bytes; uint64 > INT64_MAX rejected
 *   0xd0..0xd3   int 8..64     1/2/4/8 bytes, two's complement
 *   0xd4..0xd8   fixext 1..16  type byte, then 1/2/4/8/16 bytes (as ext)
 *   0xd9..0xdb   str 8/16/32   N in 1/2/4 bytes, then N bytes
 *   0xdc, 0xdd   array 16/32   N in 2/4 bytes, then N values
 *   0xde, 0xdf   map 16/32     N in 2/4 bytes, then N key/value pairs
 *   0xe0..0xff   negative int  none: the byte as int8 (-32..-1)
 *
 * Checks made before anything is allocated or copied:
 *   - a str/bin/ext length must fit in the bytes that remain, and a str/bin
 *     must not exceed proto_limits.max_value_bytes (PROTO_ETOOBIG);
 *   - an array of N elements needs at least N more bytes and a map of N
 *     pairs at least 2N more bytes, since every value is at least one byte.
 *     So an allocation sized by a declared count is bounded by a constant
 *     times the input size;
 *   - skipping an unknown value descends at most proto_limits.max_depth
 *     levels of arrays/maps (PROTO_ETOOBIG beyond).
 *
 * MESSAGE LAYOUT (see proto/msg.h for every field)
 *
 *   fixarray(3) [ 1, type, map{ "key": value, ... } ]
 *
 * A PUSH of one table with two columns and one upsert event, as bytes:
 *
 *   93 01 03 88                        [1, 3, map of 8 pairs
 *   a6 "branch" a3 "b17" ...           header fields as in HELLO
 *   a6 "tables" 91 93 a1 "t"           "tables": [["t",
 *      92 a2 "id" a4 "name" 01                    ["id", "name"], 1]]
 *   a6 "events" 91 95 05 cf <8 bytes>  "events": [[5, tag,
 *      00 01 92 07 a3 "abc"                       0, 1, [7, "abc"]]]
 */
#ifndef PROTO_INT_H
#define PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/compiler.h"
#include "proto/err.h"
#include "proto/msg.h"

/* What the next value in the input is, from its first byte. */
typedef enum {
	PROTO_MT_NIL,
	PROTO_MT_BOOL,
	PROTO_MT_INT,
	PROTO_MT_FLOAT,
	PROTO_MT_STR,
	PROTO_MT_BIN,
	PROTO_MT_ARRAY,
	PROTO_MT_MAP,
	PROTO_MT_EXT,
	PROTO_MT_BAD, /* 0xc1, never valid */
	PROTO_MT_END, /* no byte left */
} proto_mtype;

/* A read position in an input buffer; never moves past end. */
typedef struct {
	const uint8_t *p;        /* next byte to read */
	const uint8_t *end;      /* one past the last byte */
	const proto_limits *lim; /* limits in force (all fields non-zero) */
	char *err;               /* reason of the first failure, or NULL */
	size_t errlen;           /* size of err */
} proto_cur;

/* proto_seterr formats a reason into err (which may be NULL). */
void proto_seterr(char *err, size_t errlen, const char *fmt, ...)
    BS_PRINTF(3, 4);
/* proto_preerr puts a context prefix before the reason already in err. */
void proto_preerr(char *err, size_t errlen, const char *fmt, ...)
    BS_PRINTF(3, 4);

/* proto_arena_array returns n zeroed elements of size bytes, or NULL (also
 * when n * size overflows). */
void *proto_arena_array(proto_arena *a, size_t n, size_t size);

/* proto_cur_init starts a cursor over buf[0..len). */
void proto_cur_init(proto_cur *c, const uint8_t *buf, size_t len,
    const proto_limits *lim, char *err, size_t errlen);
/* proto_cur_left returns the number of unread bytes. */
size_t proto_cur_left(const proto_cur *c);
/* proto_cur_peek classifies the next value without consuming it. */
proto_mtype proto_cur_peek(const proto_cur *c);
/* proto_mtype_name returns "str", "array", ... for error texts. */
const char *proto_mtype_name(proto_mtype t);

/*
 * The readers below consume one value of the named kind. On a wrong kind
 * or a short input they return PROTO_EPROTO with a reason such as
 * "expected int, got str"; on a limit PROTO_ETOOBIG. The cursor position
 * is unspecified after an error.
 */
proto_err proto_cur_bool(proto_cur *c, bool *v);
proto_err proto_cur_int(proto_cur *c, int64_t *v);
proto_err proto_cur_float(proto_cur *c, double *v);
/* str and bin return a pointer into the input, not a copy. */
proto_err proto_cur_str(proto_cur *c, const uint8_t **s, uint32_t *len);
proto_err proto_cur_bin(proto_cur *c, const uint8_t **s, uint32_t *len);
/* array and map headers: *n is checked against the bytes that remain. */
proto_err proto_cur_array(proto_cur *c, uint32_t *n);
proto_err proto_cur_map(proto_cur *c, uint32_t *n);
/* proto_cur_skip consumes one value of any kind, within max_depth. */
proto_err proto_cur_skip(proto_cur *c);
/* proto_cur_value reads one row value (a scalar) and copies str/bin into
 * the arena; arrays, maps and ext are PROTO_EPROTO. */
proto_err proto_cur_value(proto_cur *c, proto_arena *a, proto_value *v);

#endif /* PROTO_INT_H */
