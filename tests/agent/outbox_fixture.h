/*
 * outbox_fixture.h: the outbox a case of outbox_test.c or rejects_test.c
 * works on. Include it after agent_test.h, in one test file only (it
 * defines the state and its helpers).
 *
 * open_ob installs capture on the case's POS file and opens the outbox
 * (ob) and an arena for batches (push); close_ob releases both and runs
 * before teardown(). qint reads one integer from the POS file.
 */
#ifndef BS_OUTBOX_FIXTURE_H
#define BS_OUTBOX_FIXTURE_H

#include "agent_test.h"
#include "capture.h"
#include "outbox.h"
#include "proto/msg.h"

static outbox *ob;
static proto_arena *arena;
static proto_push push;

static void
close_ob(void)
{
	outbox_close(ob);
	ob = NULL;
	proto_arena_free(arena);
	arena = NULL;
}

/* qint runs sql and returns its one integer result. */
static int64_t
qint(const char *sql)
{
	return strtoll(query(sql), NULL, 10);
}

static bool
open_ob(void)
{
	capture_result res;
	CHECK_OK(capture_install(db, &conf, false, &res, err, sizeof err));
	if (outbox_open(&conf, &ob, err, sizeof err) != PROTO_OK) {
		fprintf(stderr, "outbox_open: %s\n", err);
		return false;
	}
	CHECK((arena = proto_arena_new()) != NULL);
	return true;
}

/* ack_compact: outbox_ack, then a compaction whatever the counts. */
static bool
ack_compact(
    int64_t w, const proto_push *sent, const proto_outcome *outs, size_t n)
{
	CHECK_OK(outbox_ack(ob, w, sent, 0, outs, n, err, sizeof err));
	CHECK_OK(outbox_compact(ob, 0, err, sizeof err));
	return true;
}

#endif /* BS_OUTBOX_FIXTURE_H */
