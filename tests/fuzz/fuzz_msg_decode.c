/*
 * fuzz_msg_decode.c: libFuzzer target for proto_msg_decode.
 *
 * Any input must either be refused with a reason or decode to a message
 * that encodes again; decoding that encoding must give the same message,
 * and encoding it once more the same bytes (the encoding of a decoded
 * message is canonical). Anything else aborts, which libFuzzer reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* same_fields compares the fields a corrupted round trip would change. */
static void
same_fields(const proto_msg *a, const proto_msg *b)
{
	uint32_t i, j;

	FUZZ_ASSERT(a->type == b->type);
	if (a->type == PROTO_PUSH) {
		const proto_push *p = &a->u.push, *q = &b->u.push;
		FUZZ_ASSERT(p->ntables == q->ntables);
		FUZZ_ASSERT(p->nevents == q->nevents);
		FUZZ_ASSERT(strcmp(p->hdr.branch, q->hdr.branch) == 0);
		for (i = 0; i < p->nevents; i++) {
			FUZZ_ASSERT(p->events[i].seq == q->events[i].seq);
			FUZZ_ASSERT(p->events[i].nvals == q->events[i].nvals);
			for (j = 0; j < p->events[i].nvals; j++)
				FUZZ_ASSERT(
				    proto_value_eq(&p->events[i].vals[j],
				        &q->events[i].vals[j]));
		}
	} else if (a->type == PROTO_CHANGES) {
		const proto_changes *p = &a->u.changes, *q = &b->u.changes;
		FUZZ_ASSERT(p->cursor == q->cursor && p->more == q->more);
		FUZZ_ASSERT(p->ntables == q->ntables);
		FUZZ_ASSERT(p->nchanges == q->nchanges);
		for (i = 0; i < p->nchanges; i++) {
			FUZZ_ASSERT(p->changes[i].seq == q->changes[i].seq);
			FUZZ_ASSERT(p->changes[i].op == q->changes[i].op);
			FUZZ_ASSERT(
			    p->changes[i].tag == 0 && q->changes[i].tag == 0);
			if (i > 0)
				FUZZ_ASSERT(
				    p->changes[i].seq > p->changes[i - 1].seq);
			for (j = 0; j < p->changes[i].nvals; j++)
				FUZZ_ASSERT(
				    proto_value_eq(&p->changes[i].vals[j],
				        &q->changes[i].vals[j]));
		}
	} else if (a->type == PROTO_PULL) {
		FUZZ_ASSERT(a->u.pull.cursor == b->u.pull.cursor);
		FUZZ_ASSERT(strcmp(a->u.pull.table, b->u.pull.table) == 0);
	} else if (a->type == PROTO_ACK) {
		FUZZ_ASSERT(a->u.ack.noutcomes == b->u.ack.noutcomes);
		FUZZ_ASSERT(a->u.ack.watermark == b->u.ack.watermark);
	} else if (a->type == PROTO_ERROR) {
		FUZZ_ASSERT(
		    strcmp(a->u.error.message, b->u.error.message) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	proto_msg *m = NULL, *m2 = NULL;
	proto_buf b1, b2;
	proto_limits big = {0};
	char err[256];

	err[0] = '\0';
	if (proto_msg_decode(data, size, NULL, &m, err, sizeof(err))
	    != PROTO_OK) {
		FUZZ_ASSERT(m == NULL && err[0] != '\0');
		return 0;
	}
	proto_buf_init(&b1);
	proto_buf_init(&b2);
	FUZZ_ASSERT(proto_msg_encode(m, &b1, err, sizeof(err)) == PROTO_OK);
	/* float32 widens to float64, so the encoding may outgrow the input. */
	big.max_msg_bytes = SIZE_MAX;
	FUZZ_ASSERT(
	    proto_msg_decode(b1.data, b1.len, &big, &m2, err, sizeof(err))
	    == PROTO_OK);
	same_fields(m, m2);
	FUZZ_ASSERT(proto_msg_encode(m2, &b2, err, sizeof(err)) == PROTO_OK);
	FUZZ_ASSERT(b1.len == b2.len && memcmp(b1.data, b2.data, b1.len) == 0);
	proto_msg_free(m);
	proto_msg_free(m2);
	proto_buf_fini(&b1);
	proto_buf_fini(&b2);
	return 0;
}
