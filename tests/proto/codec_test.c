/*
 * codec_test.c: tests of proto/codec.c: the buffer, the arena, and the
 * bounds-checked msgpack cursor on every format it accepts or rejects.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../proto/proto_int.h"
#include "testutil.h"

static proto_limits lim;
static char err[256];

static void
cur_over(proto_cur *c, const uint8_t *b, size_t n)
{
	proto_limits_default(&lim);
	err[0] = '\0';
	proto_cur_init(c, b, n, &lim, err, sizeof(err));
}

static void
buf_grows_and_resets(void)
{
	proto_buf b;
	size_t i;

	proto_buf_init(&b);
	for (i = 0; i < 10000; i++)
		CHECK_OK(proto_buf_append(&b, &i, 1));
	CHECK(b.len == 10000 && b.cap >= 10000);
	CHECK(b.data[255] == 255 && b.data[256] == 0);
	proto_buf_reset(&b);
	CHECK(b.len == 0 && b.cap >= 10000);
	CHECK_OK(proto_buf_append(&b, NULL, 0));
	proto_buf_fini(&b);
	CHECK(b.data == NULL && b.cap == 0);
}

static void
buf_reserve_overflow(void)
{
	proto_buf b;

	proto_buf_init(&b);
	CHECK_OK(proto_buf_append(&b, "x", 1));
	CHECK_ERR(proto_buf_reserve(&b, SIZE_MAX), PROTO_ENOMEM);
	CHECK_ERR(proto_buf_reserve(&b, SIZE_MAX / 2), PROTO_ENOMEM);
	CHECK(b.len == 1 && b.data[0] == 'x');
	proto_buf_fini(&b);
}

static void
arena_misaligned_or_dirty(void)
{
	proto_arena *a = proto_arena_new();
	unsigned char *p;
	size_t i, j;

	CHECK(a != NULL);
	for (i = 0; i < 2000; i++) {
		p = proto_arena_alloc(a, i % 37);
		CHECK(p != NULL && ((uintptr_t) p % 16) == 0);
		for (j = 0; j < i % 37; j++)
			CHECK(p[j] == 0);
		memset(p, 0xff, i % 37);
	}
	proto_arena_reset(a);
	for (i = 0; i < 100; i++) {
		p = proto_arena_alloc(a, 64);
		CHECK(p != NULL && p[0] == 0 && p[63] == 0);
	}
	proto_arena_free(a);
	proto_arena_free(NULL);
}

static void
arena_huge_or_overflowing(void)
{
	proto_arena *a = proto_arena_new();
	char *s;
	void *big;

	CHECK(a != NULL);
	CHECK(proto_arena_alloc(a, SIZE_MAX) == NULL);
	CHECK(proto_arena_alloc(a, SIZE_MAX - 8) == NULL);
	CHECK(proto_arena_array(a, SIZE_MAX / 2, 4) == NULL);
	CHECK(proto_arena_strndup(a, "x", SIZE_MAX) == NULL);
	big = proto_arena_alloc(a, 3 * 1024 * 1024);
	CHECK(
	    big != NULL && ((unsigned char *) big)[3 * 1024 * 1024 - 1] == 0);
	s = proto_arena_strndup(a, "ab\0cd", 5);
	CHECK(s != NULL && memcmp(s, "ab\0cd", 6) == 0);
	proto_arena_free(a);
}

static void
int_formats_misread(void)
{
	static const struct {
		uint8_t b[9];
		size_t n;
		int64_t want;
	} t[] = {
	    {{0x00}, 1, 0},
	    {{0x7f}, 1, 127},
	    {{0xff}, 1, -1},
	    {{0xe0}, 1, -32},
	    {{0xcc, 0xff}, 2, 255},
	    {{0xcd, 0x01, 0x00}, 3, 256},
	    {{0xce, 0xff, 0xff, 0xff, 0xff}, 5, 4294967295LL},
	    {{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9,
	        INT64_MAX},
	    {{0xd0, 0x80}, 2, -128},
	    {{0xd1, 0x80, 0x00}, 3, -32768},
	    {{0xd2, 0x80, 0x00, 0x00, 0x00}, 5, INT32_MIN},
	    {{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 9, INT64_MIN},
	    {{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}, 9, -2},
	    {{0xd0, 0x05}, 2, 5},
	};
	proto_cur c;
	int64_t v;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cur_over(&c, t[i].b, t[i].n);
		CHECK_OK(proto_cur_int(&c, &v));
		CHECK(v == t[i].want && proto_cur_left(&c) == 0);
	}
}

static void
uint64_above_int64_max(void)
{
	static const uint8_t b[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
	proto_cur c;
	int64_t v;

	cur_over(&c, b, sizeof(b));
	CHECK_ERR(proto_cur_int(&c, &v), PROTO_EPROTO);
	CHECK_STR(err, "out of range");
}

static void
int_truncated(void)
{
	static const uint8_t b[] = {0xd3, 1, 2, 3, 4, 5, 6, 7, 8};
	proto_cur c;
	int64_t v;
	size_t n;

	for (n = 0; n < sizeof(b); n++) {
		cur_over(&c, b, n);
		CHECK_ERR(proto_cur_int(&c, &v), PROTO_EPROTO);
	}
}

static void
float32_not_widened(void)
{
	static const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5 */
	static const uint8_t f64[] = {0xcb, 0xc0, 0x04, 0, 0, 0, 0, 0, 0};
	proto_cur c;
	double v;

	cur_over(&c, f32, sizeof(f32));
	CHECK_OK(proto_cur_float(&c, &v));
	CHECK(v == 1.5);
	cur_over(&c, f64, sizeof(f64));
	CHECK_OK(proto_cur_float(&c, &v));
	CHECK(v == -2.5);
	cur_over(&c, f64, 5);
	CHECK_ERR(proto_cur_float(&c, &v), PROTO_EPROTO);
}

static void
str_formats_misread(void)
{
	static const uint8_t fix[] = {0xa3, 'a', 'b', 'c'};
	static const uint8_t s8[] = {0xd9, 0x02, 'h', 'i'};
	static const uint8_t s16[] = {0xda, 0x00, 0x01, 'x'};
	static const uint8_t s32[] = {0xdb, 0, 0, 0, 0};
	static const uint8_t b8[] = {0xc4, 0x01, 0x00};
	const uint8_t *s;
	uint32_t len;
	proto_cur c;

	cur_over(&c, fix, sizeof(fix));
	CHECK_OK(proto_cur_str(&c, &s, &len));
	CHECK(len == 3 && memcmp(s, "abc", 3) == 0);
	cur_over(&c, s8, sizeof(s8));
	CHECK_OK(proto_cur_str(&c, &s, &len));
	CHECK(len == 2 && s[1] == 'i');
	cur_over(&c, s16, sizeof(s16));
	CHECK_OK(proto_cur_str(&c, &s, &len));
	CHECK(len == 1 && s[0] == 'x');
	cur_over(&c, s32, sizeof(s32));
	CHECK_OK(proto_cur_str(&c, &s, &len));
	CHECK(len == 0 && proto_cur_left(&c) == 0);
	cur_over(&c, b8, sizeof(b8));
	CHECK_ERR(proto_cur_str(&c, &s, &len), PROTO_EPROTO);
	CHECK_STR(err, "expected str, got bin");
	CHECK_OK(proto_cur_bin(&c, &s, &len));
	CHECK(len == 1 && s[0] == 0);
}

static void
str_longer_than_input(void)
{
	static const uint8_t b[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
	const uint8_t *s;
	uint32_t len;
	proto_cur c;

	cur_over(&c, b, sizeof(b));
	CHECK_ERR(proto_cur_str(&c, &s, &len), PROTO_EPROTO);
	CHECK_STR(err, "exceeds the 1 bytes that remain");
}

static void
str_over_value_limit(void)
{
	static const uint8_t b[] = {0xa5, 'a', 'b', 'c', 'd', 'e'};
	const uint8_t *s;
	uint32_t len;
	proto_cur c;

	cur_over(&c, b, sizeof(b));
	lim.max_value_bytes = 4;
	CHECK_ERR(proto_cur_str(&c, &s, &len), PROTO_ETOOBIG);
	CHECK_STR(err, "limit of 4 bytes");
}

static void
array_count_beyond_input(void)
{
	static const uint8_t a32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
	static const uint8_t m32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0};
	static const uint8_t m1[] = {0x81, 0xc0};
	static const uint8_t a16[] = {0xdc, 0x00, 0x02, 0xc0, 0xc0};
	proto_cur c;
	uint32_t n;

	cur_over(&c, a32, sizeof(a32));
	CHECK_ERR(proto_cur_array(&c, &n), PROTO_EPROTO);
	cur_over(&c, m32, sizeof(m32));
	CHECK_ERR(proto_cur_map(&c, &n), PROTO_EPROTO);
	cur_over(&c, m1, sizeof(m1)); /* one pair needs two bytes */
	CHECK_ERR(proto_cur_map(&c, &n), PROTO_EPROTO);
	cur_over(&c, a16, sizeof(a16));
	CHECK_OK(proto_cur_array(&c, &n));
	CHECK(n == 2);
}

static void
skip_ext_and_every_kind(void)
{
	static const uint8_t b[] = {0x9f, /* array of 15 */
	    0xc0, 0xc3, 0x05, 0xcd, 1, 2, 0xca, 0, 0, 0, 0, 0xa1, 'x', 0xc4,
	    0x00, 0xd4, 0x01, 0xaa, 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0xc7, 0x02, 0x01, 0xaa, 0xbb, 0xc8, 0x00, 0x00,
	    0x01, 0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0xee, 0x81, 0xa1, 'k',
	    0x90, 0xdf, 0, 0, 0, 0, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0};
	proto_cur c;

	cur_over(&c, b, sizeof(b));
	CHECK_OK(proto_cur_skip(&c));
	CHECK(proto_cur_left(&c) == 0);
}

static void
skip_truncated_ext(void)
{
	static const uint8_t b[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00};
	static const uint8_t bad[] = {0xc1};
	proto_cur c;
	size_t n;

	for (n = 0; n <= sizeof(b); n++) {
		cur_over(&c, b, n);
		CHECK_ERR(proto_cur_skip(&c), PROTO_EPROTO);
	}
	cur_over(&c, bad, 1);
	CHECK_ERR(proto_cur_skip(&c), PROTO_EPROTO);
	CHECK_STR(err, "0xc1");
}

static void
skip_at_end_of_data(void)
{
	/* Exactly sized heap copies, so ASan sees a read past the end. */
	static const uint8_t b[] = {0x92, 0x91, 0xc0}; /* 2nd one missing */
	uint8_t *p = malloc(sizeof(b));
	proto_cur c;

	CHECK(p != NULL);
	memcpy(p, b, sizeof(b));
	cur_over(&c, p, sizeof(b));
	CHECK_ERR(proto_cur_skip(&c), PROTO_EPROTO);
	CHECK_STR(err, "end of data");
	cur_over(&c, p + sizeof(b), 0);
	CHECK_ERR(proto_cur_skip(&c), PROTO_EPROTO);
	free(p);
}

static void
skip_too_deep(void)
{
	uint8_t b[20];
	proto_cur c;

	memset(b, 0x91, sizeof(b));
	b[8] = 0xc0; /* 8 levels: allowed */
	cur_over(&c, b, 9);
	CHECK_OK(proto_cur_skip(&c));
	b[8] = 0x91;
	b[9] = 0xc0; /* 9 levels: refused */
	cur_over(&c, b, 10);
	CHECK_ERR(proto_cur_skip(&c), PROTO_ETOOBIG);
	CHECK_STR(err, "nested deeper than 8");
}

static void
value_nested_or_ext(void)
{
	static const uint8_t arr[] = {0x91, 0x01};
	static const uint8_t map[] = {0x80};
	static const uint8_t ext[] = {0xd4, 0x01, 0x00};
	proto_arena *a = proto_arena_new();
	proto_value v;
	proto_cur c;

	CHECK(a != NULL);
	cur_over(&c, arr, sizeof(arr));
	CHECK_ERR(proto_cur_value(&c, a, &v), PROTO_EPROTO);
	CHECK_STR(err, "got array");
	cur_over(&c, map, sizeof(map));
	CHECK_ERR(proto_cur_value(&c, a, &v), PROTO_EPROTO);
	cur_over(&c, ext, sizeof(ext));
	CHECK_ERR(proto_cur_value(&c, a, &v), PROTO_EPROTO);
	CHECK_STR(err, "got ext");
	cur_over(&c, ext, 0);
	CHECK_ERR(proto_cur_value(&c, a, &v), PROTO_EPROTO);
	CHECK_STR(err, "end of data");
	proto_arena_free(a);
}

static void
value_str_with_nul(void)
{
	static const uint8_t b[] = {0xa3, 'a', 0, 'b'};
	proto_arena *a = proto_arena_new();
	proto_value v;
	proto_cur c;

	CHECK(a != NULL);
	cur_over(&c, b, sizeof(b));
	CHECK_OK(proto_cur_value(&c, a, &v));
	CHECK(v.type == PROTO_STR && v.len == 3);
	CHECK(memcmp(v.u.s, "a\0b", 4) == 0);
	proto_arena_free(a);
}

static void
error_prefix_overflows(void)
{
	char small[16] = "expected int";

	proto_preerr(small, sizeof(small), "field \"%s\": ", "events");
	CHECK(strlen(small) == 15);
	CHECK(strncmp(small, "field \"events\":", 15) == 0);
	strcpy(err, "expected int");
	proto_preerr(err, sizeof(err), "event %u: ", 3u);
	CHECK(strcmp(err, "event 3: expected int") == 0);
	proto_preerr(NULL, 0, "x");
	proto_seterr(NULL, 0, "x");
}

static const test_case cases[] = {
    {"buf grows and resets", buf_grows_and_resets},
    {"buf reserve overflow", buf_reserve_overflow},
    {"arena misaligned or dirty", arena_misaligned_or_dirty},
    {"arena huge or overflowing", arena_huge_or_overflowing},
    {"int formats misread", int_formats_misread},
    {"uint64 above INT64_MAX", uint64_above_int64_max},
    {"int truncated", int_truncated},
    {"float32 not widened", float32_not_widened},
    {"str formats misread", str_formats_misread},
    {"str longer than input", str_longer_than_input},
    {"str over value limit", str_over_value_limit},
    {"array count beyond input", array_count_beyond_input},
    {"skip ext and every kind", skip_ext_and_every_kind},
    {"skip truncated ext", skip_truncated_ext},
    {"skip at end of data", skip_at_end_of_data},
    {"skip too deep", skip_too_deep},
    {"value nested or ext", value_nested_or_ext},
    {"value str with NUL", value_str_with_nul},
    {"error prefix overflows", error_prefix_overflows},
};

TEST_MAIN(cases)
