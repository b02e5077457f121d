/*
 * pgval.c: text encodings of wire values for PostgreSQL. These run for
 * every value of every event, so they avoid printf for integers.
 */
#include "pgval.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char hexdig[] = "0123456789abcdef";

void
pgval_reserve(pgval_buf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
pgval_put(pgval_buf *b, const char *s, size_t n)
{
	pgval_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
pgval_puts(pgval_buf *b, const char *s)
{
	pgval_put(b, s, strlen(s));
}

void
pgval_putc(pgval_buf *b, char c)
{
	pgval_reserve(b, 1);
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

void
pgval_reset(pgval_buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
pgval_fini(pgval_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

bool
pgval_has_nul(const proto_value *v)
{
	return v->type == PROTO_STR && memchr(v->u.s, '\0', v->len) != NULL;
}

/* put_int appends a decimal int64 without printf. */
static void
put_int(pgval_buf *b, int64_t i)
{
	char tmp[24];
	size_t n = sizeof tmp;
	/* Negate in unsigned arithmetic: -INT64_MIN overflows int64_t. */
	uint64_t u = i < 0 ? 0 - (uint64_t) i : (uint64_t) i;

	do {
		tmp[--n] = (char) ('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (i < 0)
		tmp[--n] = '-';
	pgval_put(b, tmp + n, sizeof tmp - n);
}

/* put_float appends a float in a spelling float8in accepts. */
static void
put_float(pgval_buf *b, double f)
{
	char tmp[40];

	if (isnan(f))
		pgval_puts(b, "NaN");
	else if (isinf(f))
		pgval_puts(b, f > 0 ? "Infinity" : "-Infinity");
	else {
		snprintf(tmp, sizeof tmp, "%.17g", f);
		pgval_puts(b, tmp);
	}
}

/* put_hex appends "\x" (with the given backslash) and the hex digits. */
static void
put_hex(pgval_buf *b, const char *prefix, const uint8_t *p, size_t n)
{
	pgval_puts(b, prefix);
	pgval_reserve(b, 2 * n);
	for (size_t i = 0; i < n; i++) {
		b->p[b->len++] = hexdig[p[i] >> 4];
		b->p[b->len++] = hexdig[p[i] & 15];
	}
	b->p[b->len] = '\0';
}

/* put_quoted appends s in double quotes with \ and " escaped. */
static void
put_quoted(pgval_buf *b, const char *s, size_t n)
{
	pgval_reserve(b, 2 * n + 2);
	char *o = b->p + b->len;
	*o++ = '"';
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"' || s[i] == '\\')
			*o++ = '\\';
		*o++ = s[i];
	}
	*o++ = '"';
	b->len = (size_t) (o - b->p);
	b->p[b->len] = '\0';
}

void
pgval_array_elem(pgval_buf *b, const proto_value *v)
{
	switch (v->type) {
	case PROTO_NIL:
		pgval_put(b, "NULL", 4);
		break;
	case PROTO_BOOL:
		pgval_putc(b, v->u.b ? 't' : 'f');
		break;
	case PROTO_INT:
		put_int(b, v->u.i);
		break;
	case PROTO_FLOAT:
		pgval_putc(b, '"');
		put_float(b, v->u.f);
		pgval_putc(b, '"');
		break;
	case PROTO_STR:
		put_quoted(b, v->u.s, v->len);
		break;
	case PROTO_BIN:
		/* Element text \x..., its backslash escaped inside quotes. */
		put_hex(b, "\"\\\\x", v->u.p, v->len);
		pgval_putc(b, '"');
		break;
	}
}

void
pgval_json_str(pgval_buf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t i = 0;

	pgval_putc(b, '"');
	while (i < n) {
		size_t len = proto_utf8_len(u + i, n - i);
		if (len == 0 || u[i] == 0) {
			pgval_puts(b, "\\ufffd");
			i++;
		} else if (u[i] == '"' || u[i] == '\\') {
			pgval_putc(b, '\\');
			pgval_putc(b, (char) u[i++]);
		} else if (u[i] < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", u[i++]);
			pgval_puts(b, esc);
		} else {
			pgval_put(b, s + i, len);
			i += len;
		}
	}
	pgval_putc(b, '"');
}

void
pgval_json(pgval_buf *b, const proto_value *v)
{
	switch (v->type) {
	case PROTO_NIL:
		pgval_puts(b, "null");
		break;
	case PROTO_BOOL:
		pgval_puts(b, v->u.b ? "true" : "false");
		break;
	case PROTO_INT:
		put_int(b, v->u.i);
		break;
	case PROTO_FLOAT:
		if (isnan(v->u.f) || isinf(v->u.f))
			pgval_puts(b, "null");
		else
			put_float(b, v->u.f);
		break;
	case PROTO_STR:
		pgval_json_str(b, v->u.s, v->len);
		break;
	case PROTO_BIN:
		put_hex(b, "\"\\\\x", v->u.p, v->len);
		pgval_putc(b, '"');
		break;
	}
}
