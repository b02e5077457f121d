/* sqlb.c: identifier and literal quoting into a strbuf. */
#include "sqlb.h"

#include <string.h>

static void
sqlb_quoted(strbuf *b, const char *s, char q)
{
	strbuf_reserve(b, 2 * strlen(s) + 2);
	b->p[b->len++] = q;
	for (; *s != '\0'; s++) {
		if (*s == q)
			b->p[b->len++] = q;
		b->p[b->len++] = *s;
	}
	b->p[b->len++] = q;
	b->p[b->len] = '\0';
}

void
sqlb_ident(strbuf *b, const char *name)
{
	sqlb_quoted(b, name, '"');
}

void
sqlb_lit(strbuf *b, const char *s)
{
	sqlb_quoted(b, s, '\'');
}
