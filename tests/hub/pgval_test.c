/*
 * pgval_test.c: tests of hub/pgval.c, the text encodings of wire values
 * (array-literal elements for the set-based apply, JSON for rejects).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgval.h"
#include "testutil.h"

static proto_value
v_int(int64_t i)
{
	proto_value v = {.type = PROTO_INT};
	v.u.i = i;
	return v;
}

static proto_value
v_str(const char *s, uint32_t n)
{
	proto_value v = {.type = PROTO_STR, .len = n};
	v.u.s = s;
	return v;
}

static proto_value
v_float(double f)
{
	proto_value v = {.type = PROTO_FLOAT};
	v.u.f = f;
	return v;
}

/* elem encodes one value as an array element. */
static const char *
elem(strbuf *b, proto_value v)
{
	strbuf_reset(b);
	pgval_array_elem(b, &v);
	return b->p;
}

static const char *
json(strbuf *b, proto_value v)
{
	strbuf_reset(b);
	pgval_json(b, &v);
	return b->p;
}

static void
test_array_scalars(void)
{
	strbuf b = {0};
	proto_value nil = {.type = PROTO_NIL}, t = {.type = PROTO_BOOL};
	static const uint8_t bin[] = {0x00, 0xab, 0x10};
	proto_value bv = {.type = PROTO_BIN, .len = 3};

	t.u.b = true;
	bv.u.p = bin;
	CHECK_STREQ(elem(&b, nil), "NULL");
	CHECK_STREQ(elem(&b, t), "t");
	CHECK_STREQ(elem(&b, v_int(0)), "0");
	CHECK_STREQ(elem(&b, v_int(-42)), "-42");
	CHECK_STREQ(elem(&b, v_int(INT64_MIN)), "-9223372036854775808");
	CHECK_STREQ(elem(&b, v_int(INT64_MAX)), "9223372036854775807");
	CHECK_STREQ(elem(&b, v_float(1.5)), "\"1.5\"");
	CHECK_STREQ(elem(&b, v_float(NAN)), "\"NaN\"");
	CHECK_STREQ(elem(&b, v_float(-INFINITY)), "\"-Infinity\"");
	CHECK_STREQ(elem(&b, bv), "\"\\\\x00ab10\"");
	strbuf_fini(&b);
}

static void
test_array_strings(void)
{
	strbuf b = {0};
	proto_value nul = {.type = PROTO_STR, .len = 3, .u.s = "a\0b"};
	proto_value plain = {.type = PROTO_STR, .len = 3, .u.s = "abc"};

	CHECK_STREQ(elem(&b, v_str("", 0)), "\"\"");
	CHECK_STREQ(elem(&b, v_str("NULL", 4)), "\"NULL\"");
	CHECK_STREQ(elem(&b, v_str("a\"b\\c", 5)), "\"a\\\"b\\\\c\"");
	CHECK_STREQ(elem(&b, v_str("{x, y}", 6)), "\"{x, y}\"");
	CHECK(pgval_has_nul(&nul));    /* NUL detected */
	CHECK(!pgval_has_nul(&plain)); /* no false NUL */
	strbuf_fini(&b);
}

static void
test_json(void)
{
	strbuf b = {0};

	CHECK_STREQ(
	    json(&b, v_str("a\"\n\x01", 4)), "\"a\\\"\\u000a\\u0001\"");
	CHECK_STREQ(json(&b, v_str("\xc3\xa9", 2)), "\"\xc3\xa9\"");
	CHECK_STREQ(json(&b, v_str("\xff\xc3", 2)), "\"\\ufffd\\ufffd\"");
	CHECK_STREQ(json(&b, v_str("a\0b", 3)), "\"a\\ufffdb\"");
	CHECK_STREQ(
	    json(&b, v_str("\xed\xa0\x80", 3)), "\"\\ufffd\\ufffd\\ufffd\"");
	CHECK_STREQ(json(&b, v_float(INFINITY)), "null");
	CHECK_STREQ(json(&b, v_int(-7)), "-7");
	strbuf_fini(&b);
}

static const test_case cases[] = {
    {"array scalars", test_array_scalars},
    {"array strings need quoting", test_array_strings},
    {"json from bad utf8 and controls", test_json},
};

TEST_MAIN(cases)
