/* siphash.c: SipHash-2-4 (see siphash.h). */
#include "siphash.h"

#include <pthread.h>
#include <string.h>

#include "platform.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

/* sipround is one SipRound of the four state words. */
static void
sipround(siphash *s)
{
	s->v0 += s->v1;
	s->v1 = ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = ROTL(s->v2, 32);
}

/* round2 compresses one message word: c = 2 SipRounds. */
static void
round2(siphash *s, uint64_t m)
{
	s->v3 ^= m;
	sipround(s);
	sipround(s);
	s->v0 ^= m;
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void
siphash_init(siphash *s, const uint8_t k[16])
{
	uint64_t k0 = le64(k), k1 = le64(k + 8);

	s->v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	s->v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	s->v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	s->v3 = k1 ^ UINT64_C(0x7465646279746573);
	s->tail = 0;
	s->ntail = 0;
	s->total = 0;
}

void
siphash_feed(siphash *s, const void *p, size_t n)
{
	const uint8_t *b = p;

	s->total += n;
	while (n > 0 && s->ntail > 0) {
		s->tail |= (uint64_t) *b++ << (8 * s->ntail);
		n--;
		if (++s->ntail == 8) {
			round2(s, s->tail);
			s->tail = 0;
			s->ntail = 0;
		}
	}
	for (; n >= 8; n -= 8, b += 8)
		round2(s, le64(b));
	for (; n > 0; n--)
		s->tail |= (uint64_t) *b++ << (8 * s->ntail++);
}

uint64_t
siphash_final(siphash *s)
{
	uint64_t m = s->tail | (s->total << 56);

	round2(s, m);
	s->v2 ^= 0xff;
	for (int i = 0; i < 4; i++) /* d = 4 */
		sipround(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static uint8_t process_key[16];
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void
draw_key(void)
{
	uint64_t a = plat_rand_u64(), b = plat_rand_u64();

	memcpy(process_key, &a, 8);
	memcpy(process_key + 8, &b, 8);
}

const uint8_t *
siphash_process_key(void)
{
	pthread_once(&process_key_once, draw_key);
	return process_key;
}
