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

bool
pgval_has_nul(const proto_value *v)
{
	return v->type == PROTO_STR && memchr(v->u.s, '\0', v->len) != NULL;
}

/* put_int appends a decimal int64 without printf. */
static void
put_int(strbuf *b, int64_t i)
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
	strbuf_put(b, tmp + n, sizeof tmp - n);
}

/* put_float appends a float in a spelling float8in accepts. */
static void
put_float(strbuf *b, double f)
{
	char tmp[40];

	if (isnan(f))
		strbuf_puts(b, "NaN");
	else if (isinf(f))
		strbuf_puts(b, f > 0 ? "Infinity" : "-Infinity");
	else {
		snprintf(tmp, sizeof tmp, "%.17g", f);
		strbuf_puts(b, tmp);
	}
}

/* put_hex appends "\x" (with the given backslash) and the hex digits. */
static void
put_hex(strbuf *b, const char *prefix, const uint8_t *p, size_t n)
{
	strbuf_puts(b, prefix);
	strbuf_reserve(b, 2 * n);
	for (size_t i = 0; i < n; i++) {
		b->p[b->len++] = hexdig[p[i] >> 4];
		b->p[b->len++] = hexdig[p[i] & 15];
	}
	b->p[b->len] = '\0';
}

/* put_quoted appends s in double quotes with \ and " escaped. */
static void
put_quoted(strbuf *b, const char *s, size_t n)
{
	strbuf_reserve(b, 2 * n + 2);
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
pgval_array_elem(strbuf *b, const proto_value *v)
{
	switch (v->type) {
	case PROTO_NIL:
		strbuf_put(b, "NULL", 4);
		break;
	case PROTO_BOOL:
		strbuf_putc(b, v->u.b ? 't' : 'f');
		break;
	case PROTO_INT:
		put_int(b, v->u.i);
		break;
	case PROTO_FLOAT:
		strbuf_putc(b, '"');
		put_float(b, v->u.f);
		strbuf_putc(b, '"');
		break;
	case PROTO_STR:
		put_quoted(b, v->u.s, v->len);
		break;
	case PROTO_BIN:
		/* Element text \x..., its backslash escaped inside quotes. */
		put_hex(b, "\"\\\\x", v->u.p, v->len);
		strbuf_putc(b, '"');
		break;
	}
}

void
pgval_json_str(strbuf *b, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t i = 0;

	strbuf_putc(b, '"');
	while (i < n) {
		size_t len = proto_utf8_len(u + i, n - i);
		if (len == 0 || u[i] == 0) {
			strbuf_puts(b, "\\ufffd");
			i++;
		} else if (u[i] == '"' || u[i] == '\\') {
			strbuf_putc(b, '\\');
			strbuf_putc(b, (char) u[i++]);
		} else if (u[i] < 0x20) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\u%04x", u[i++]);
			strbuf_puts(b, esc);
		} else {
			strbuf_put(b, s + i, len);
			i += len;
		}
	}
	strbuf_putc(b, '"');
}

void
pgval_json(strbuf *b, const proto_value *v)
{
	switch (v->type) {
	case PROTO_NIL:
		strbuf_puts(b, "null");
		break;
	case PROTO_BOOL:
		strbuf_puts(b, v->u.b ? "true" : "false");
		break;
	case PROTO_INT:
		put_int(b, v->u.i);
		break;
	case PROTO_FLOAT:
		if (isnan(v->u.f) || isinf(v->u.f))
			strbuf_puts(b, "null");
		else
			put_float(b, v->u.f);
		break;
	case PROTO_STR:
		pgval_json_str(b, v->u.s, v->len);
		break;
	case PROTO_BIN:
		put_hex(b, "\"\\\\x", v->u.p, v->len);
		strbuf_putc(b, '"');
		break;
	}
}
