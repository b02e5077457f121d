/*
 * siphash.h: SipHash-2-4 (Aumasson and Bernstein), a keyed hash for hash
 * tables whose keys come from outside. Without the key, nobody can choose
 * keys that collide, so a table keeps its expected O(1) probes against a
 * branch that crafts its keys.
 */
#ifndef BS_SIPHASH_H
#define BS_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The state of one hash being computed: feed bytes, then finish. */
typedef struct {
	uint64_t v0, v1, v2, v3; /* the four state words */
	uint64_t tail;           /* bytes not yet compressed, little-endian */
	size_t ntail;            /* how many (0..7) */
	uint64_t total;          /* bytes fed so far */
} siphash;

/* siphash_init starts a hash under the 16-byte key k. */
void siphash_init(siphash *s, const uint8_t k[16]);
/* siphash_feed adds n bytes. */
void siphash_feed(siphash *s, const void *p, size_t n);
/* siphash_final returns the 64-bit hash of everything fed. */
uint64_t siphash_final(siphash *s);

/*
 * siphash_process_key returns a 16-byte key drawn from the CSPRNG once per
 * process (the first call draws it; thread-safe).
 */
const uint8_t *siphash_process_key(void);

#endif /* BS_SIPHASH_H */
