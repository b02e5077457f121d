/*
 * strbuf.h: the one growable text buffer of both daemons.
 *
 *   strbuf b = {0};
 *   strbuf_puts(&b, "SELECT ");
 *   strbuf_printf(&b, "%d", 42);
 *   ... b.p, b.len ...
 *   strbuf_fini(&b);
 *
 * A zeroed strbuf is empty and valid. The text is NUL-terminated once
 * anything was added (b.p is NULL before). Functions that add may move
 * b.p: a pointer into it is valid only until the next addition. Memory
 * follows util.h's policy: running out aborts.
 */
#ifndef BS_STRBUF_H
#define BS_STRBUF_H

#include <stddef.h>

#include "proto/compiler.h"

typedef struct {
	char *p;    /* NUL-terminated text, NULL while nothing was added */
	size_t len; /* bytes before the NUL */
	size_t cap; /* bytes allocated */
} strbuf;

/* strbuf_reserve makes room for n more bytes and the NUL. */
void strbuf_reserve(strbuf *b, size_t n);

/* strbuf_put adds n bytes of s (which may hold NULs); _puts a C string,
 * _putc one byte, _printf formatted text. */
void strbuf_put(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) BS_PRINTF(2, 3);

/* strbuf_reset empties b and keeps its memory. */
void strbuf_reset(strbuf *b);

/*
 * strbuf_take returns the text (never NULL: "" when empty), which the
 * caller frees, and leaves b empty with no memory.
 */
char *strbuf_take(strbuf *b);

/* strbuf_fini frees b's memory; b is empty and valid afterwards. */
void strbuf_fini(strbuf *b);

#endif /* BS_STRBUF_H */
