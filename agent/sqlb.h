/*
 * sqlb.h: quoting for SQL text built in a strbuf (strbuf.h).
 *
 * Identifiers always go through sqlb_ident ("" doubling) and string
 * literals through sqlb_lit ('' doubling); the names themselves come only
 * from the POS file's own catalog. Memory errors abort (xmalloc policy).
 */
#ifndef AGENT_SQLB_H
#define AGENT_SQLB_H

#include "strbuf.h"

/* sqlb_ident appends name as a quoted identifier: "na""me". */
void sqlb_ident(strbuf *b, const char *name);

/* sqlb_lit appends s as a string literal: 'it''s'. */
void sqlb_lit(strbuf *b, const char *s);

#endif /* AGENT_SQLB_H */
