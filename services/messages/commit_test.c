/* commit_test.c: the group commit's decisions, without a database. The file includes commit.c
 * to reach its static functions; the test builds what the first pipeline's answers would have
 * recorded (locked conversations with their last seq, membership) and checks what
 * msg_batch_assign decides for each send of a batch and what the write statements receive. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "commit.c"

#define T1    "tenant-1"
#define T2    "tenant-2"
#define CONVA "0b6c7e1a-0000-4a4a-8a8a-00000000000a"
#define CONVB "0b6c7e1a-0000-4a4a-8a8a-00000000000b"
#define CONVX "0b6c7e1a-0000-4a4a-8a8a-0000000000ff" /* not locked: does not exist */

struct fixture {
	struct msg_send_item items[8];
	struct msg_send_item *ptr[8];
	struct msg_lock locks[8];
	int follow[8];
	bool member[8];
	struct msg_batch bt;
};

/* send adds a pending send to f; returns its index. */
static int
send(struct fixture *f, const char *tenant, const char *id, const char *conv, const char *sender,
     const char *idem, bool member)
{
	int i = (int)f->bt.n++;
	struct msg_send_item *it = &f->items[i];
	memset(it, 0, sizeof(*it));
	it->tenant = tenant;
	it->id = id;
	it->conv = conv;
	it->sender = sender;
	it->idem_key = idem;
	it->content = "hello";
	it->code = MSG_PENDING;
	f->ptr[i] = it;
	f->follow[i] = -1;
	f->member[i] = member;
	return i;
}

/* lock records conversation conv of tenant as locked with last seq seq. */
static void
lock(struct fixture *f, const char *tenant, const char *conv, int64_t seq)
{
	struct msg_lock *l = &f->locks[f->bt.n_locks++];
	l->tenant = tenant;
	snprintf(l->id, sizeof(l->id), "%s", conv);
	l->seq = seq;
	l->last_msg = NULL;
}

static void
init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->bt.items = f->ptr;
	f->bt.locks = f->locks;
	f->bt.follow = f->follow;
	f->bt.member = f->member;
}

/* Seqs follow queue order per conversation, from the conversation's last seq; each new send
 * gets the batch's time and its ids; the lock remembers the newest message. */
static void
test_seqs_in_queue_order_per_conversation(void **state)
{
	(void)state;
	struct fixture f;
	init(&f);
	lock(&f, T1, CONVA, 41);
	lock(&f, T1, CONVB, 0);
	int a1 = send(&f, T1, "m1", CONVA, "alice", NULL, true);
	int b1 = send(&f, T1, "m2", CONVB, "alice", NULL, true);
	int a2 = send(&f, T1, "m3", CONVA, "bob", NULL, true);
	int b2 = send(&f, T1, "m4", CONVB, "bob", NULL, true);

	assert_int_equal(msg_batch_assign(&f.bt, 1234), 4);
	assert_int_equal(f.items[a1].seq, 42);
	assert_int_equal(f.items[a2].seq, 43);
	assert_int_equal(f.items[b1].seq, 1);
	assert_int_equal(f.items[b2].seq, 2);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(f.items[i].code, MSG_PENDING); /* answered after COMMIT */
		assert_int_equal(f.items[i].created_ms, 1234);
		assert_string_equal(f.items[i].out_id, f.items[i].id);
		assert_string_equal(f.items[i].out_conv, f.items[i].conv);
	}
	assert_int_equal(f.locks[0].seq, 43);
	assert_string_equal(f.locks[0].last_msg, "m3");
	assert_int_equal(f.locks[1].seq, 2);
	assert_string_equal(f.locks[1].last_msg, "m4");
}

/* A send repeating an earlier one of the batch (same id, or same sender and idempotency key, in
 * the same tenant) follows it and takes no seq; the same id in another tenant, or the same key
 * from another sender, is a send of its own. */
static void
test_repeats_within_the_batch(void **state)
{
	(void)state;
	struct fixture f;
	init(&f);
	lock(&f, T1, CONVA, 0);
	lock(&f, T2, CONVA, 10);
	int first = send(&f, T1, "m1", CONVA, "alice", "k1", true);
	int same_id = send(&f, T1, "m1", CONVA, "alice", NULL, true);
	int same_key = send(&f, T1, "m2", CONVA, "alice", "k1", true);
	int other_sender_key = send(&f, T1, "m3", CONVA, "bob", "k1", true);
	int other_tenant = send(&f, T2, "m1", CONVA, "carol", NULL, true);

	assert_int_equal(msg_batch_assign(&f.bt, 1), 3);
	assert_int_equal(f.follow[first], -1);
	assert_int_equal(f.follow[same_id], first);
	assert_int_equal(f.follow[same_key], first);
	assert_int_equal(f.items[same_id].seq, 0);
	assert_int_equal(f.items[same_key].seq, 0);
	assert_int_equal(f.follow[other_sender_key], -1);
	assert_int_equal(f.items[first].seq, 1);
	assert_int_equal(f.items[other_sender_key].seq, 2);
	assert_int_equal(f.follow[other_tenant], -1);
	assert_int_equal(f.items[other_tenant].seq, 11);
}

/* A send to a conversation that was not locked (it does not exist in that tenant) is NOT_FOUND,
 * one from a non-member PERMISSION_DENIED; neither uses a seq. A send already answered (found
 * stored by the first pipeline) is left as it is. */
static void
test_refusals_take_no_seq(void **state)
{
	(void)state;
	struct fixture f;
	init(&f);
	lock(&f, T1, CONVA, 5);
	int missing = send(&f, T1, "m1", CONVX, "alice", NULL, true);
	int other_tenant = send(&f, T2, "m2", CONVA, "alice", NULL, true);
	int outsider = send(&f, T1, "m3", CONVA, "mallory", NULL, false);
	int stored = send(&f, T1, "m4", CONVA, "alice", NULL, true);
	f.items[stored].code = SB__RPC__CODE__OK;
	f.items[stored].duplicate = true;
	f.items[stored].seq = 3;
	int ok = send(&f, T1, "m5", CONVA, "alice", NULL, true);

	assert_int_equal(msg_batch_assign(&f.bt, 1), 1);
	assert_int_equal(f.items[missing].code, SB__RPC__CODE__NOT_FOUND);
	assert_int_equal(f.items[other_tenant].code, SB__RPC__CODE__NOT_FOUND);
	assert_int_equal(f.items[outsider].code, SB__RPC__CODE__PERMISSION_DENIED);
	assert_non_null(f.items[outsider].error);
	assert_int_equal(f.items[stored].code, SB__RPC__CODE__OK);
	assert_int_equal(f.items[stored].seq, 3);
	assert_int_equal(f.items[ok].seq, 6);
	assert_int_equal(f.locks[0].seq, 6);
}

/* The write statements get one element per new send (insert) and one per conversation
 * written to (update: its last seq and newest message); a conversation locked but not
 * written to is not updated. */
static void
test_write_parameters(void **state)
{
	(void)state;
	struct fixture f;
	init(&f);
	lock(&f, T1, CONVA, 7);
	lock(&f, T1, CONVB, 3);
	send(&f, T1, "m1", CONVA, "alice", NULL, true);
	send(&f, T1, "m1", CONVA, "alice", NULL, true);    /* repeat */
	send(&f, T1, "m2", CONVB, "mallory", NULL, false); /* refused */
	send(&f, T1, "m3", CONVA, "bob", NULL, true);
	assert_int_equal(msg_batch_assign(&f.bt, 1), 2);

	struct msg_params ids = { 0 }, all = { 0 }, up = { 0 };
	static const msg_field_fn idf[] = { f_id };
	assert_int_equal(msg_batch_params(&f.bt, idf, 1, true, &ids), 0);
	assert_string_equal(ids.p[0], "{\"m1\",\"m3\"}");
	assert_int_equal(msg_batch_params(&f.bt, idf, 1, false, &all), 0);
	assert_string_equal(all.p[0], "{\"m1\",\"m1\",\"m2\",\"m3\"}");
	assert_int_equal(msg_batch_update_params(&f.bt, &up), 0);
	assert_string_equal(up.p[1], "{\"" CONVA "\"}");
	assert_string_equal(up.p[2], "{\"9\"}"); /* elements are quoted */
	assert_string_equal(up.p[3], "{\"m3\"}");
	msg_params_free(&ids);
	msg_params_free(&all);
	msg_params_free(&up);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seqs_in_queue_order_per_conversation),
		cmocka_unit_test(test_repeats_within_the_batch),
		cmocka_unit_test(test_refusals_take_no_seq),
		cmocka_unit_test(test_write_parameters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
