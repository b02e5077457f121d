/* sqlb.c: growable SQL text with identifier and literal quoting. */
#include "sqlb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void
sqlb_grow(sqlb *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return;
	while (b->len + n + 1 > b->cap)
		b->cap = b->cap ? b->cap * 2 : 256;
	b->s = xrealloc(b->s, b->cap);
}

void
sqlb_add(sqlb *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sqlb_grow(b, (size_t) n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t) n;
}

static void
sqlb_quoted(sqlb *b, const char *s, char q)
{
	sqlb_grow(b, 2 * strlen(s) + 2);
	b->s[b->len++] = q;
	for (; *s != '\0'; s++) {
		if (*s == q)
			b->s[b->len++] = q;
		b->s[b->len++] = *s;
	}
	b->s[b->len++] = q;
	b->s[b->len] = '\0';
}

void
sqlb_ident(sqlb *b, const char *name)
{
	sqlb_quoted(b, name, '"');
}

void
sqlb_lit(sqlb *b, const char *s)
{
	sqlb_quoted(b, s, '\'');
}

char *
sqlb_take(sqlb *b)
{
	char *s = b->s;
	if (s == NULL)
		s = xstrdup("");
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void
sqlb_fini(sqlb *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}
