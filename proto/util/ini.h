/*
 * ini.h: a small INI reader, the same on every platform.
 *
 * The syntax is the one branchsync's files have always used (libinih's
 * defaults):
 *   - "[section]" starts a section; keys before the first one belong to
 *     the section "";
 *   - "name = value" or "name: value"; the name and the value are trimmed;
 *   - a line whose first non-blank character is ';' or '#' is a comment;
 *   - in a value, ';' preceded by a blank starts a comment;
 *   - a UTF-8 byte order mark before the first line is skipped.
 * Leading blanks do not continue the line before, as they can in some INI
 * dialects: an indented line is read like any other.
 *
 * Anything else (a line with no '=' or ':', an unclosed '[', an empty
 * name, a line longer than INI_MAX_LINE bytes) is a syntax error.
 */
#ifndef BS_INI_H
#define BS_INI_H

#include <stddef.h>
#include <stdio.h>

/* Longest line read, in bytes, without its newline. */
#define INI_MAX_LINE 4096

/*
 * ini_handler is called for each section header (name and value NULL)
 * and each "name = value" line, with the line's number (from 1). It
 * returns nonzero to go on, 0 to stop the parse: ini_parse then returns
 * that line's number.
 */
typedef int (*ini_handler)(void *user, int lineno, const char *section,
    const char *name, const char *value);

/*
 * ini_parse reads f to its end, calling h. It returns 0 when every line
 * was read and accepted, the number of the first line the handler refused,
 * or, after a syntax error, that line's number with the reason in
 * err ("unclosed section header", ...). A read error returns -1 with its
 * text in err.
 */
int ini_parse(FILE *f, ini_handler h, void *user, char *err, size_t errlen);

#endif /* BS_INI_H */
