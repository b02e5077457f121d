/*
 * fuzz_common.h: helpers shared by the libFuzzer targets: a failed check
 * aborts (libFuzzer reports it with the input), the invariants every
 * decoded message must hold, and field-by-field message comparison.
 */
#ifndef BS_FUZZ_COMMON_H
#define BS_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(x)                                                        \
	do {                                                                  \
		if (!(x)) {                                                   \
			fprintf(                                              \
			    stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x);   \
			abort();                                              \
		}                                                             \
	} while (0)

/* fuzz_hash is FNV-1a over the input: a deterministic per-input choice. */
uint64_t fuzz_hash(const uint8_t *data, size_t size);

/* fuzz_limits_tight fills lim with small limits that inputs can reach. */
void fuzz_limits_tight(proto_limits *lim);

/*
 * fuzz_msg_check aborts unless m holds what proto/msg.h promises of a
 * decoded message under the (resolved) limits lim: every string set,
 * table indexes in range, value counts matching the op, nkey in range,
 * ops and outcome codes valid, CHANGES ids increasing and the cursor not
 * below the last, WELCOME seq lists increasing, counts within lim.
 */
void fuzz_msg_check(const proto_msg *m, const proto_limits *lim);

/* fuzz_msg_same aborts unless a and b hold the same message. */
void fuzz_msg_same(const proto_msg *a, const proto_msg *b);

/*
 * fuzz_roundtrip encodes m (which must succeed), decodes the encoding
 * with unbounded limits (which must succeed), checks the result equals m
 * field by field and that encoding it again gives the same bytes.
 */
void fuzz_roundtrip(const proto_msg *m);

/*
 * fuzz_env_check aborts unless env, decoded from data[0..size), holds what
 * proto_env_decode promises: the body a slice that ends the input, the
 * auth map of the type's direction (codes valid, nonces within the
 * limit, a MAC in every request and every answer but an ERROR).
 */
void fuzz_env_check(const proto_env *env, const uint8_t *data, size_t size);

/*
 * fuzz_roundtrip_v2 encodes m as the body of a version 2 message with
 * env's auth map (which must succeed), decodes it with unbounded limits
 * (which must succeed), checks the auth map and the message are the same
 * and that the body encodes again to the same bytes.
 */
void fuzz_roundtrip_v2(const proto_msg *m, const proto_env *env);

#endif /* BS_FUZZ_COMMON_H */
