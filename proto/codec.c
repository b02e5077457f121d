/*
 * codec.c: byte-level building blocks of the wire format.
 *
 * The growable buffer the encoder writes into, the arena decoded messages
 * live in, and a bounds-checked msgpack cursor (formats in proto_int.h).
 * The cursor is the only code that looks at untrusted bytes: every read is
 * checked against the end of the input and every declared length against
 * the bytes that remain, before anything is allocated.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"

/* ---- error buffer ---------------------------------------------------- */

void
proto_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void
proto_preerr(char *err, size_t errlen, const char *fmt, ...)
{
	char pre[128];
	size_t np, nold;
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	np = (size_t) n < sizeof(pre) ? (size_t) n : sizeof(pre) - 1;
	if (np >= errlen)
		np = errlen - 1;
	/* Shift the old reason right, dropping its tail if it no longer
	 * fits: the context is worth more than the last words. */
	nold = strnlen(err, errlen - 1);
	if (nold > errlen - 1 - np)
		nold = errlen - 1 - np;
	memmove(err + np, err, nold);
	memcpy(err, pre, np);
	err[np + nold] = '\0';
}

/* ---- proto_buf ------------------------------------------------------- */

void
proto_buf_init(proto_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

proto_err
proto_buf_reserve(proto_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (n <= b->cap - b->len)
		return PROTO_OK;
	if (n > SIZE_MAX / 2 - b->len)
		return PROTO_ENOMEM;
	/* Grow geometrically so appending byte by byte stays linear. */
	cap = b->cap < 256 ? 256 : b->cap;
	while (cap < b->len + n)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL)
		return PROTO_ENOMEM;
	b->data = p;
	b->cap = cap;
	return PROTO_OK;
}

proto_err
proto_buf_append(proto_buf *b, const void *p, size_t n)
{
	proto_err rv;

	if (n == 0)
		return PROTO_OK;
	if ((rv = proto_buf_reserve(b, n)) != PROTO_OK)
		return rv;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return PROTO_OK;
}

void
proto_buf_reset(proto_buf *b)
{
	b->len = 0;
}

void
proto_buf_fini(proto_buf *b)
{
	free(b->data);
	proto_buf_init(b);
}

/* ---- proto_arena ----------------------------------------------------- */

#define ARENA_ALIGN     16
#define ARENA_MIN_BLOCK 4096
#define ARENA_MAX_BLOCK (1024 * 1024)

/* One block of an arena; data follows the header, 16-byte aligned. */
typedef struct arena_block {
	struct arena_block *next; /* older block, or NULL */
	size_t size;              /* bytes of data */
	size_t used;              /* bytes of data handed out */
	_Alignas(ARENA_ALIGN) unsigned char data[];
} arena_block;

struct proto_arena {
	arena_block *head; /* newest block: allocations come from here */
	size_t next_size;  /* data size of the next block to make */
};

proto_arena *
proto_arena_new(void)
{
	proto_arena *a;

	if ((a = malloc(sizeof(*a))) == NULL)
		return NULL;
	a->head = NULL;
	a->next_size = ARENA_MIN_BLOCK;
	return a;
}

/* arena_grow adds a block holding at least n bytes. Block sizes double up
 * to ARENA_MAX_BLOCK so a big message needs few mallocs; a request larger
 * than that gets a block of its own. */
static arena_block *
arena_grow(proto_arena *a, size_t n)
{
	arena_block *b;
	size_t size = a->next_size;

	if (n > size)
		size = n;
	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	if ((b = malloc(sizeof(*b) + size)) == NULL)
		return NULL;
	b->size = size;
	b->used = 0;
	b->next = a->head;
	a->head = b;
	if (a->next_size < ARENA_MAX_BLOCK)
		a->next_size *= 2;
	return b;
}

void *
proto_arena_alloc(proto_arena *a, size_t n)
{
	arena_block *b = a->head;
	void *p;

	if (n > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	n = (n + ARENA_ALIGN - 1) & ~(size_t) (ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN; /* distinct non-NULL pointers for size 0 */
	if (b == NULL || b->size - b->used < n) {
		if ((b = arena_grow(a, n)) == NULL)
			return NULL;
	}
	p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

void *
proto_arena_array(proto_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return proto_arena_alloc(a, n * size);
}

char *
proto_arena_strndup(proto_arena *a, const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX || (p = proto_arena_alloc(a, n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
proto_arena_reset(proto_arena *a)
{
	arena_block *b, *next, *keep = NULL;

	/* Keep the largest block: the next message is likely as big. */
	for (b = a->head; b != NULL; b = b->next)
		if (keep == NULL || b->size > keep->size)
			keep = b;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (b != keep)
			free(b);
	}
	if (keep != NULL) {
		keep->next = NULL;
		keep->used = 0;
	}
	a->head = keep;
}

void
proto_arena_free(proto_arena *a)
{
	arena_block *b, *next;

	if (a == NULL)
		return;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

/* ---- cursor ---------------------------------------------------------- */

void
proto_cur_init(proto_cur *c, const uint8_t *buf, size_t len,
    const proto_limits *lim, char *err, size_t errlen)
{
	c->p = buf;
	c->end = buf + len;
	c->lim = lim;
	c->err = err;
	c->errlen = errlen;
}

size_t
proto_cur_left(const proto_cur *c)
{
	return (size_t) (c->end - c->p);
}

proto_mtype
proto_cur_peek(const proto_cur *c)
{
	uint8_t b;

	if (c->p >= c->end)
		return PROTO_MT_END;
	b = *c->p;
	if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
		return PROTO_MT_INT;
	if (b <= 0x8f || b == 0xde || b == 0xdf)
		return PROTO_MT_MAP;
	if (b <= 0x9f || b == 0xdc || b == 0xdd)
		return PROTO_MT_ARRAY;
	if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb))
		return PROTO_MT_STR;
	switch (b) {
	case 0xc0:
		return PROTO_MT_NIL;
	case 0xc1:
		return PROTO_MT_BAD;
	case 0xc2:
	case 0xc3:
		return PROTO_MT_BOOL;
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return PROTO_MT_BIN;
	case 0xca:
	case 0xcb:
		return PROTO_MT_FLOAT;
	default:
		return PROTO_MT_EXT; /* 0xc7..0xc9, 0xd4..0xd8 */
	}
}

const char *
proto_mtype_name(proto_mtype t)
{
	static const char *const names[] = {
	    [PROTO_MT_NIL] = "nil",
	    [PROTO_MT_BOOL] = "bool",
	    [PROTO_MT_INT] = "int",
	    [PROTO_MT_FLOAT] = "float",
	    [PROTO_MT_STR] = "str",
	    [PROTO_MT_BIN] = "bin",
	    [PROTO_MT_ARRAY] = "array",
	    [PROTO_MT_MAP] = "map",
	    [PROTO_MT_EXT] = "ext",
	    [PROTO_MT_BAD] = "invalid byte 0xc1",
	    [PROTO_MT_END] = "end of data",
	};

	return names[t];
}

/* cur_mismatch reports that the next value is not what the caller wants. */
static proto_err
cur_mismatch(proto_cur *c, const char *want)
{
	proto_seterr(c->err, c->errlen, "expected %s, got %s", want,
	    proto_mtype_name(proto_cur_peek(c)));
	return PROTO_EPROTO;
}

/* cur_take consumes n bytes into *p, or fails on a short input. */
static proto_err
cur_take(proto_cur *c, size_t n, const uint8_t **p)
{
	if (n > proto_cur_left(c)) {
		proto_seterr(c->err, c->errlen, "unexpected end of data");
		return PROTO_EPROTO;
	}
	*p = c->p;
	c->p += n;
	return PROTO_OK;
}

/* cur_be reads an n-byte big-endian unsigned number (n <= 8). */
static proto_err
cur_be(proto_cur *c, size_t n, uint64_t *v)
{
	const uint8_t *p;
	proto_err rv;
	size_t i;

	if ((rv = cur_take(c, n, &p)) != PROTO_OK)
		return rv;
	*v = 0;
	for (i = 0; i < n; i++)
		*v = (*v << 8) | p[i];
	return PROTO_OK;
}

proto_err
proto_cur_bool(proto_cur *c, bool *v)
{
	if (proto_cur_peek(c) != PROTO_MT_BOOL)
		return cur_mismatch(c, "bool");
	*v = *c->p++ == 0xc3;
	return PROTO_OK;
}

proto_err
proto_cur_int(proto_cur *c, int64_t *v)
{
	proto_err rv;
	uint64_t u;
	size_t n;
	uint8_t b;

	if (proto_cur_peek(c) != PROTO_MT_INT)
		return cur_mismatch(c, "int");
	b = *c->p++;
	if (b <= 0x7f || b >= 0xe0) {
		*v = b <= 0x7f ? (int64_t) b : (int64_t) b - 256;
		return PROTO_OK;
	}
	n = (size_t) 1 << (b & 3); /* 0xcc/0xd0: 1 byte ... 0xcf/0xd3: 8 */
	if ((rv = cur_be(c, n, &u)) != PROTO_OK)
		return rv;
	if (b <= 0xcf) {
		if (u > INT64_MAX) {
			proto_seterr(c->err, c->errlen,
			    "int %llu out of range", (unsigned long long) u);
			return PROTO_EPROTO;
		}
		*v = (int64_t) u;
		return PROTO_OK;
	}
	if (n < 8 && (u >> (8 * n - 1)) != 0)
		u |= ~(uint64_t) 0 << (8 * n); /* sign-extend */
	/* Two's complement to int64 without an out-of-range conversion. */
	*v = u <= INT64_MAX ? (int64_t) u : -(int64_t) (~u) - 1;
	return PROTO_OK;
}

proto_err
proto_cur_float(proto_cur *c, double *v)
{
	proto_err rv;
	uint64_t u;
	uint32_t u32;
	float f;

	if (proto_cur_peek(c) != PROTO_MT_FLOAT)
		return cur_mismatch(c, "float");
	if (*c->p++ == 0xca) {
		if ((rv = cur_be(c, 4, &u)) != PROTO_OK)
			return rv;
		u32 = (uint32_t) u;
		memcpy(&f, &u32, sizeof(f));
		*v = f;
		return PROTO_OK;
	}
	if ((rv = cur_be(c, 8, &u)) != PROTO_OK)
		return rv;
	memcpy(v, &u, sizeof(*v));
	return PROTO_OK;
}

/* cur_body consumes the n bytes of a str or bin whose header is read. */
static proto_err
cur_body(proto_cur *c, uint64_t n, const char *what, const uint8_t **s,
    uint32_t *len)
{
	if (n > proto_cur_left(c)) {
		proto_seterr(c->err, c->errlen,
		    "%s of %llu bytes exceeds the %zu bytes that remain", what,
		    (unsigned long long) n, proto_cur_left(c));
		return PROTO_EPROTO;
	}
	if (n > c->lim->max_value_bytes) {
		proto_seterr(c->err, c->errlen,
		    "%s of %llu bytes exceeds the limit of %u bytes", what,
		    (unsigned long long) n, c->lim->max_value_bytes);
		return PROTO_ETOOBIG;
	}
	*s = c->p;
	*len = (uint32_t) n;
	c->p += n;
	return PROTO_OK;
}

proto_err
proto_cur_str(proto_cur *c, const uint8_t **s, uint32_t *len)
{
	proto_err rv;
	uint64_t n;
	uint8_t b;

	if (proto_cur_peek(c) != PROTO_MT_STR)
		return cur_mismatch(c, "str");
	b = *c->p++;
	if (b <= 0xbf)
		n = b & 0x1f;
	else if ((rv = cur_be(c, (size_t) 1 << (b - 0xd9), &n)) != PROTO_OK)
		return rv;
	return cur_body(c, n, "str", s, len);
}

proto_err
proto_cur_bin(proto_cur *c, const uint8_t **s, uint32_t *len)
{
	proto_err rv;
	uint64_t n;
	uint8_t b;

	if (proto_cur_peek(c) != PROTO_MT_BIN)
		return cur_mismatch(c, "bin");
	b = *c->p++;
	if ((rv = cur_be(c, (size_t) 1 << (b - 0xc4), &n)) != PROTO_OK)
		return rv;
	return cur_body(c, n, "bin", s, len);
}

/* cur_count checks a declared element count against the remaining input:
 * each element needs at least per bytes. */
static proto_err
cur_count(proto_cur *c, uint64_t n, uint64_t per, const char *what)
{
	if (n * per > proto_cur_left(c)) {
		proto_seterr(c->err, c->errlen,
		    "%s of %llu elements exceeds the %zu bytes that remain",
		    what, (unsigned long long) n, proto_cur_left(c));
		return PROTO_EPROTO;
	}
	return PROTO_OK;
}

proto_err
proto_cur_array(proto_cur *c, uint32_t *n)
{
	proto_err rv;
	uint64_t u;
	uint8_t b;

	if (proto_cur_peek(c) != PROTO_MT_ARRAY)
		return cur_mismatch(c, "array");
	b = *c->p++;
	if (b <= 0x9f)
		u = b & 0x0f;
	else if ((rv = cur_be(c, b == 0xdc ? 2 : 4, &u)) != PROTO_OK)
		return rv;
	if ((rv = cur_count(c, u, 1, "array")) != PROTO_OK)
		return rv;
	*n = (uint32_t) u;
	return PROTO_OK;
}

proto_err
proto_cur_map(proto_cur *c, uint32_t *n)
{
	proto_err rv;
	uint64_t u;
	uint8_t b;

	if (proto_cur_peek(c) != PROTO_MT_MAP)
		return cur_mismatch(c, "map");
	b = *c->p++;
	if (b <= 0x8f)
		u = b & 0x0f;
	else if ((rv = cur_be(c, b == 0xde ? 2 : 4, &u)) != PROTO_OK)
		return rv;
	if ((rv = cur_count(c, u, 2, "map")) != PROTO_OK)
		return rv;
	*n = (uint32_t) u;
	return PROTO_OK;
}

/* cur_skip_scalar skips a value that is neither array nor map. */
static proto_err
cur_skip_scalar(proto_cur *c, proto_mtype t)
{
	const uint8_t *s;
	uint32_t len;
	proto_err rv;
	uint64_t n;
	uint8_t b;

	if (t == PROTO_MT_END || t == PROTO_MT_BAD) {
		proto_seterr(
		    c->err, c->errlen, "unexpected %s", proto_mtype_name(t));
		return PROTO_EPROTO;
	}
	b = *c->p; /* safe only now: END means there is no byte */
	switch (t) {
	case PROTO_MT_STR:
		return proto_cur_str(c, &s, &len);
	case PROTO_MT_BIN:
		return proto_cur_bin(c, &s, &len);
	case PROTO_MT_NIL:
	case PROTO_MT_BOOL:
		return cur_take(c, 1, &s);
	case PROTO_MT_FLOAT:
		return cur_take(c, b == 0xca ? 5 : 9, &s);
	case PROTO_MT_INT:
		if (b <= 0x7f || b >= 0xe0)
			return cur_take(c, 1, &s);
		return cur_take(c, 1 + ((size_t) 1 << (b & 3)), &s);
	case PROTO_MT_EXT:
		c->p++;
		if (b >= 0xd4) /* fixext: type byte + 1..16 bytes */
			return cur_take(c, 1 + ((size_t) 1 << (b - 0xd4)), &s);
		if ((rv = cur_be(c, (size_t) 1 << (b - 0xc7), &n)) != PROTO_OK)
			return rv;
		if (n >= proto_cur_left(c))
			return cur_take(c, SIZE_MAX, &s); /* reports the end */
		return cur_take(c, 1 + n, &s);
	default:
		return PROTO_EPROTO; /* arrays and maps are not scalars */
	}
}

/* cur_skip_depth skips one value that sits depth levels deep. */
static proto_err
cur_skip_depth(proto_cur *c, uint32_t depth)
{
	proto_mtype t = proto_cur_peek(c);
	proto_err rv;
	uint64_t i, n;
	uint32_t cnt;

	if (t != PROTO_MT_ARRAY && t != PROTO_MT_MAP)
		return cur_skip_scalar(c, t);
	if (depth >= c->lim->max_depth) {
		proto_seterr(c->err, c->errlen,
		    "values nested deeper than %u levels", c->lim->max_depth);
		return PROTO_ETOOBIG;
	}
	rv = t == PROTO_MT_ARRAY ? proto_cur_array(c, &cnt)
	                         : proto_cur_map(c, &cnt);
	if (rv != PROTO_OK)
		return rv;
	n = t == PROTO_MT_ARRAY ? cnt : 2 * (uint64_t) cnt;
	for (i = 0; i < n; i++)
		if ((rv = cur_skip_depth(c, depth + 1)) != PROTO_OK)
			return rv;
	return PROTO_OK;
}

proto_err
proto_cur_skip(proto_cur *c)
{
	return cur_skip_depth(c, 0);
}

/* cur_copy copies a str/bin body into the arena as the value's bytes; a
 * NUL follows so that str values are C strings too. */
static proto_err
cur_copy(proto_cur *c, proto_arena *a, const uint8_t *s, uint32_t len,
    const char **out)
{
	if ((*out = proto_arena_strndup(a, (const char *) s, len)) == NULL) {
		proto_seterr(c->err, c->errlen, "out of memory");
		return PROTO_ENOMEM;
	}
	return PROTO_OK;
}

proto_err
proto_cur_value(proto_cur *c, proto_arena *a, proto_value *v)
{
	proto_mtype t = proto_cur_peek(c);
	const uint8_t *s;
	const char *copy;
	proto_err rv;

	memset(v, 0, sizeof(*v));
	switch (t) {
	case PROTO_MT_NIL:
		c->p++;
		v->type = PROTO_NIL;
		return PROTO_OK;
	case PROTO_MT_BOOL:
		v->type = PROTO_BOOL;
		return proto_cur_bool(c, &v->u.b);
	case PROTO_MT_INT:
		v->type = PROTO_INT;
		return proto_cur_int(c, &v->u.i);
	case PROTO_MT_FLOAT:
		v->type = PROTO_FLOAT;
		return proto_cur_float(c, &v->u.f);
	case PROTO_MT_STR:
	case PROTO_MT_BIN:
		rv = t == PROTO_MT_STR ? proto_cur_str(c, &s, &v->len)
		                       : proto_cur_bin(c, &s, &v->len);
		if (rv != PROTO_OK || (rv = cur_copy(c, a, s, v->len, &copy)))
			return rv;
		v->type = t == PROTO_MT_STR ? PROTO_STR : PROTO_BIN;
		if (t == PROTO_MT_STR)
			v->u.s = copy;
		else
			v->u.p = (const uint8_t *) copy;
		return PROTO_OK;
	default:
		proto_seterr(c->err, c->errlen,
		    "expected nil, bool, int, float, str or bin, got %s",
		    proto_mtype_name(t));
		return PROTO_EPROTO;
	}
}

/* ---- text ------------------------------------------------------------ */

size_t
proto_utf8_len(const uint8_t *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
	    || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}
