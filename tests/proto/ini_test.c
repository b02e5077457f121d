/*
 * ini_test.c: tests of proto/util/ini.c, the INI reader. Cases are named
 * after the failure they exercise.
 */
#include <stdio.h>
#include <string.h>

#include "ini.h"
#include "testutil.h"

/* What the handler saw, one "line:section|name|value" per call. */
static char seen[4096];
static int stop_at; /* the handler refuses this line (0: none) */

static int
record(void *user, int lineno, const char *section, const char *name,
    const char *value)
{
	size_t n = strlen(seen);

	(void) user;
	snprintf(seen + n, sizeof seen - n, "%d:%s|%s|%s\n", lineno, section,
	    name ? name : "-", value ? value : "-");
	return lineno != stop_at;
}

/* parse runs ini_parse over text; returns its result, err in errbuf. */
static char errbuf[128];
static int
parse(const char *text)
{
	FILE *f = tmpfile();
	int rc;

	if (f == NULL)
		return -2;
	fputs(text, f);
	rewind(f);
	seen[0] = '\0';
	rc = ini_parse(f, record, NULL, errbuf, sizeof errbuf);
	fclose(f);
	return rc;
}

static void
test_keys_lose_their_section_or_line(void)
{
	CHECK(parse("top = 1\n[agent]\nbranch = b1\n\n[table x y]\n"
	            "key: id\n")
	    == 0);
	CHECK_STREQ(seen,
	    "1:|top|1\n2:agent|-|-\n3:agent|branch|b1\n"
	    "5:table x y|-|-\n6:table x y|key|id\n");
}

static void
test_comments_and_blanks_leak_into_values(void)
{
	CHECK(parse("; comment\n# comment\n  [ hub ]  ; why\n"
	            "\turl =  tcp://h:1 ; the hub\r\n"
	            "path = a;b#c\nempty =\nnone = ; nothing\n")
	    == 0);
	CHECK_STREQ(seen,
	    "3:hub|-|-\n4:hub|url|tcp://h:1\n5:hub|path|a;b#c\n"
	    "6:hub|empty|\n7:hub|none|\n");
}

static void
test_first_delimiter_not_taken(void)
{
	CHECK(parse("[t]\ncolumns = pos:center, a:b\n") == 0);
	CHECK_STREQ(seen, "1:t|-|-\n2:t|columns|pos:center, a:b\n");
}

static void
test_byte_order_mark_breaks_first_line(void)
{
	CHECK(parse("\xEF\xBB\xBF[agent]\nbranch = b\n") == 0);
	CHECK_STREQ(seen, "1:agent|-|-\n2:agent|branch|b\n");
}

static void
test_syntax_errors_pass_silently(void)
{
	CHECK(parse("[agent]\nbranch b1\n") == 2);
	CHECK_STR(errbuf, "expected");
	CHECK(parse("[agent\n") == 1);
	CHECK_STR(errbuf, "unclosed");
	CHECK(parse("[agent] x\n") == 1);
	CHECK_STR(errbuf, "after a section");
	CHECK(parse("[ ]\n") == 1);
	CHECK_STR(errbuf, "empty section");
	CHECK(parse("x = 1\n = 2\n") == 2);
	CHECK_STR(errbuf, "empty key");
}

static void
test_long_line_is_cut_not_refused(void)
{
	static char text[INI_MAX_LINE + 64];

	memset(text, 'a', sizeof text);
	memcpy(text, "[t]\nk = ", 8);
	text[sizeof text - 2] = '\n';
	text[sizeof text - 1] = '\0';
	CHECK(parse(text) == 2);
	CHECK_STR(errbuf, "longer than");
	/* exactly INI_MAX_LINE bytes is fine */
	text[4 + INI_MAX_LINE] = '\n';
	text[5 + INI_MAX_LINE] = '\0';
	CHECK(parse(text) == 0);
	CHECK(strlen(seen) > INI_MAX_LINE - 10);
}

static void
test_handler_refusal_ignored(void)
{
	stop_at = 3;
	CHECK(parse("[a]\nx = 1\ny = 2\nz = 3\n") == 3);
	stop_at = 0;
	CHECK_STREQ(seen, "1:a|-|-\n2:a|x|1\n3:a|y|2\n");
}

static const test_case cases[] = {
    {"keys lose their section or line", test_keys_lose_their_section_or_line},
    {"comments and blanks leak into values",
        test_comments_and_blanks_leak_into_values},
    {"first delimiter not taken", test_first_delimiter_not_taken},
    {"byte order mark breaks the first line",
        test_byte_order_mark_breaks_first_line},
    {"syntax errors pass silently", test_syntax_errors_pass_silently},
    {"long line is cut, not refused", test_long_line_is_cut_not_refused},
    {"handler refusal ignored", test_handler_refusal_ignored},
};

TEST_MAIN(cases)
