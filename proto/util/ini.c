/* ini.c: the INI reader (see ini.h for the syntax). */
#include "ini.h"

#include <errno.h>
#include <string.h>

#include "platform.h"

#define INI_MAX_SECTION 256

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'
	    || ch == '\f' || ch == '\v';
}

/* trim removes leading and trailing blanks from s in place. */
static char *
trim(char *s)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* cut_comment ends s at the first ';' that follows a blank. */
static void
cut_comment(char *s)
{
	for (char *p = s; *p != '\0'; p++) {
		if (*p == ';' && p > s && is_blank(p[-1])) {
			*p = '\0';
			return;
		}
	}
}

/*
 * parse_line handles one line; returns 1 to go on, 0 if the handler
 * stopped, -1 on a syntax error (reason in err).
 */
static int
parse_line(char *line, int lineno, char *section, ini_handler h, void *user,
    char *err, size_t errlen)
{
	char *s = trim(line), *end, *name, *value;

	if (*s == '\0' || *s == ';' || *s == '#')
		return 1;
	if (*s == '[') {
		end = strchr(s, ']');
		if (end != NULL) {
			char *rest = trim(end + 1);
			if (*rest == '\0' || *rest == ';' || *rest == '#')
				end[1] = '\0';
		}
		if (end == NULL || end[1] != '\0') {
			snprintf(err, errlen, "%s",
			    end == NULL ? "unclosed section header"
			                : "text after a section header");
			return -1;
		}
		*end = '\0';
		s = trim(s + 1);
		if (*s == '\0' || strlen(s) >= INI_MAX_SECTION) {
			snprintf(err, errlen, "%s section name",
			    *s == '\0' ? "empty" : "too long a");
			return -1;
		}
		memcpy(section, s, strlen(s) + 1);
		return h(user, lineno, section, NULL, NULL) ? 1 : 0;
	}
	end = s + strcspn(s, "=:");
	if (*end == '\0') {
		snprintf(
		    err, errlen, "expected \"name = value\" or [section]");
		return -1;
	}
	*end = '\0';
	name = trim(s);
	if (*name == '\0') {
		snprintf(err, errlen, "empty key name");
		return -1;
	}
	value = end + 1;
	/* a comment may start right at the value: "key = ; nothing" */
	value = trim(value);
	if (*value == ';')
		*value = '\0';
	cut_comment(value);
	value = trim(value);
	return h(user, lineno, section, name, value) ? 1 : 0;
}

int
ini_parse(FILE *f, ini_handler h, void *user, char *err, size_t errlen)
{
	char line[INI_MAX_LINE + 2];
	char section[INI_MAX_SECTION] = "";
	int lineno = 0;

	err[0] = '\0';
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strlen(line);
		char *s = line;
		int rc;

		lineno++;
		if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
			snprintf(err, errlen, "line longer than %d bytes",
			    INI_MAX_LINE);
			return lineno;
		}
		if (lineno == 1 && (unsigned char) s[0] == 0xEF
		    && (unsigned char) s[1] == 0xBB
		    && (unsigned char) s[2] == 0xBF)
			s += 3;
		rc = parse_line(s, lineno, section, h, user, err, errlen);
		if (rc <= 0)
			return lineno;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "read error: %s", plat_strerror(errno));
		return -1;
	}
	return 0;
}
