/* relay_test.c: the relay thread's state machine (outbox_relay_next, relay_sm.c), one test per
 * transition of the table in outbox.h's relay section, without PostgreSQL or Kafka. Each test
 * starts from an idle relay that could select (session set up, shards held, nothing in flight,
 * not lingering, maintenance 1 s away) and changes only what its transition depends on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "outbox.h"

/* An idle relay that could select now. */
static struct outbox_relay_in
idle(void)
{
	return (struct outbox_relay_in){
		.stopping = false,
		.nbatches = 0,
		.pipeline = 4,
		.session_ok = true,
		.held = true,
		.until_maint = 1000,
		.until_select = 0,
		.poll_ms = 500,
	};
}

static struct outbox_relay_sm
in_state(enum outbox_relay_state s)
{
	return (struct outbox_relay_sm){ .state = s };
}

static struct outbox_relay_event
ev(enum outbox_relay_ev kind)
{
	return (struct outbox_relay_event){ .kind = kind };
}

static struct outbox_relay_event
db_error(int64_t backoff_ms)
{
	return (struct outbox_relay_event){ .kind = OUTBOX_RELAY_EV_DB_ERROR,
		                            .backoff_ms = backoff_ms };
}

/* next runs one transition from s on event e with inputs in. */
static struct outbox_relay_sm
next(struct outbox_relay_sm s, struct outbox_relay_event e, struct outbox_relay_in in)
{
	return outbox_relay_next(s, e, &in);
}

/* The state names are compared, so a failure says which state came instead. */
#define assert_state(sm, want)                                                                     \
	assert_string_equal(outbox_relay_state_name((sm).state), outbox_relay_state_name(want))

/* The choice after most events (rules 1-7), reached here from PRODUCE's DONE. */
static struct outbox_relay_sm
choose(bool trouble, struct outbox_relay_in in)
{
	struct outbox_relay_sm s = in_state(OUTBOX_RELAY_PRODUCE);
	s.trouble = trouble;
	return next(s, ev(OUTBOX_RELAY_EV_DONE), in);
}

/* --- choose --- */

/* Rule 1: a stop first finishes every batch in flight (they are marked before exiting). */
static void
test_choose_stopping_with_batches_finishes(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.nbatches = 1;
	in.stopping = true;
	struct outbox_relay_sm n = choose(false, in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
}

/* Rule 1: after trouble, the batches in flight are finished before backing off. */
static void
test_choose_trouble_with_batches_finishes(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.nbatches = 1;
	struct outbox_relay_sm n = choose(true, in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
	assert_true(n.trouble); /* kept until the back-off */
}

/* Rule 1: a full pipeline finishes its oldest batch; one slot less is still free to select. */
static void
test_choose_full_pipeline_finishes(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.nbatches = 4;
	struct outbox_relay_sm n = choose(false, in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
	in.nbatches = 3;
	assert_state(choose(false, in), OUTBOX_RELAY_SELECT);
}

/* Rule 1: maintenance due drains the pipeline (leases change only with nothing in flight). */
static void
test_choose_maintenance_due_with_batches_finishes(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.nbatches = 1;
	in.until_maint = 0;
	struct outbox_relay_sm n = choose(false, in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
}

/* Rule 2: stopping with nothing in flight stops. */
static void
test_choose_stopping_idle_stops(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.stopping = true;
	assert_state(choose(false, in), OUTBOX_RELAY_STOPPED);
	/* ... even after trouble: no back-off on the way out. */
	assert_state(choose(true, in), OUTBOX_RELAY_STOPPED);
}

/* Rule 3: trouble with nothing in flight backs off (broker back-off) and clears the flag. */
static void
test_choose_trouble_idle_backs_off(void **state)
{
	(void)state;
	struct outbox_relay_sm n = choose(true, idle());
	assert_state(n, OUTBOX_RELAY_BACKOFF_BROKER);
	assert_false(n.trouble);
}

/* Rule 4: a session not yet set up, or re-made by a reconnect, is maintained first. */
static void
test_choose_new_session_maintains(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.session_ok = false;
	assert_state(choose(false, in), OUTBOX_RELAY_MAINTAIN);
}

/* Rule 4: maintenance due with nothing in flight maintains. */
static void
test_choose_maintenance_due_idle_maintains(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.until_maint = -5;
	assert_state(choose(false, in), OUTBOX_RELAY_MAINTAIN);
}

/* Rule 4 needs an empty pipeline: a lost session with batches in flight is not touched until
 * they are finished (here the relay goes on selecting from shards it still holds). */
static void
test_choose_lost_session_with_batches_keeps_working(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.session_ok = false;
	in.nbatches = 1;
	assert_state(choose(false, in), OUTBOX_RELAY_SELECT);
}

/* Rule 5: no shard held: wait (NOTIFY or stop end it early) until the next maintenance. */
static void
test_choose_no_leases_waits_for_maintenance(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.held = false;
	in.until_maint = 730;
	struct outbox_relay_sm n = choose(false, in);
	assert_state(n, OUTBOX_RELAY_WAIT);
	assert_int_equal(n.wait_ms, 730);
}

/* Rule 6: lingering after a short batch with nothing in flight waits out the linger. */
static void
test_choose_lingering_idle_lingers(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.until_select = 7;
	struct outbox_relay_sm n = choose(false, in);
	assert_state(n, OUTBOX_RELAY_LINGER);
	assert_int_equal(n.wait_ms, 7);
}

/* Rule 6: lingering with batches in flight finishes the oldest meanwhile (not a drain). */
static void
test_choose_lingering_with_batches_finishes(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.until_select = 7;
	in.nbatches = 2;
	struct outbox_relay_sm n = choose(false, in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_false(n.drain);
}

/* Rule 7: otherwise select, also with batches in flight (pipelining). */
static void
test_choose_otherwise_selects(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	assert_state(choose(false, in), OUTBOX_RELAY_SELECT);
	in.nbatches = 1;
	assert_state(choose(false, in), OUTBOX_RELAY_SELECT);
}

/* --- per state and event --- */

/* START: the first choice, on a session not yet set up, is MAINTAIN. */
static void
test_start_done_chooses(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.session_ok = false;
	in.held = false;
	in.until_maint = -1000;
	assert_state(next(in_state(OUTBOX_RELAY_START), ev(OUTBOX_RELAY_EV_DONE), in),
	             OUTBOX_RELAY_MAINTAIN);
}

/* MAINTAIN DONE goes straight to the work (rules 5-7): select with shards held, wait for the
 * next maintenance without; a stop seen meanwhile is left to the select (which then finds
 * nothing to start). */
static void
test_maintain_done_works(void **state)
{
	(void)state;
	struct outbox_relay_sm m = in_state(OUTBOX_RELAY_MAINTAIN);
	struct outbox_relay_in in = idle();
	assert_state(next(m, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_SELECT);
	in.held = false;
	struct outbox_relay_sm n = next(m, ev(OUTBOX_RELAY_EV_DONE), in);
	assert_state(n, OUTBOX_RELAY_WAIT);
	assert_int_equal(n.wait_ms, 1000);
	in = idle();
	in.stopping = true;
	assert_state(next(m, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_SELECT);
}

/* MAINTAIN DB_ERROR (session setup, leases, lag or GC failed) sleeps the database back-off. */
static void
test_maintain_db_error_backs_off(void **state)
{
	(void)state;
	struct outbox_relay_sm n = next(in_state(OUTBOX_RELAY_MAINTAIN), db_error(1234), idle());
	assert_state(n, OUTBOX_RELAY_BACKOFF_DB);
	assert_int_equal(n.wait_ms, 1234);
	assert_false(n.trouble);
}

/* SELECT ROWS produces the batch. */
static void
test_select_rows_produces(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.until_select = 10; /* a short batch starts the linger: it is produced all the same */
	assert_state(next(in_state(OUTBOX_RELAY_SELECT), ev(OUTBOX_RELAY_EV_ROWS), in),
	             OUTBOX_RELAY_PRODUCE);
}

/* SELECT EMPTY with nothing in flight waits for a NOTIFY: at most the poll interval, and never
 * past the next maintenance. */
static void
test_select_empty_idle_waits(void **state)
{
	(void)state;
	struct outbox_relay_sm s = in_state(OUTBOX_RELAY_SELECT);
	struct outbox_relay_in in = idle();
	struct outbox_relay_sm n = next(s, ev(OUTBOX_RELAY_EV_EMPTY), in);
	assert_state(n, OUTBOX_RELAY_WAIT);
	assert_int_equal(n.wait_ms, 500);
	in.until_maint = 120;
	n = next(s, ev(OUTBOX_RELAY_EV_EMPTY), in);
	assert_state(n, OUTBOX_RELAY_WAIT);
	assert_int_equal(n.wait_ms, 120);
}

/* SELECT EMPTY with batches in flight finishes the oldest instead (not a drain). */
static void
test_select_empty_with_batches_finishes(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.nbatches = 1;
	struct outbox_relay_sm n =
	    next(in_state(OUTBOX_RELAY_SELECT), ev(OUTBOX_RELAY_EV_EMPTY), in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_false(n.drain);
}

/* SELECT DB_ERROR with nothing in flight sleeps the database back-off. */
static void
test_select_db_error_idle_backs_off(void **state)
{
	(void)state;
	struct outbox_relay_sm n = next(in_state(OUTBOX_RELAY_SELECT), db_error(800), idle());
	assert_state(n, OUTBOX_RELAY_BACKOFF_DB);
	assert_int_equal(n.wait_ms, 800);
	assert_false(n.trouble);
}

/* SELECT DB_ERROR with batches in flight is trouble: they are finished (drained) first. */
static void
test_select_db_error_with_batches_drains(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.nbatches = 1;
	struct outbox_relay_sm n = next(in_state(OUTBOX_RELAY_SELECT), db_error(800), in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
	assert_true(n.trouble);
}

/* SELECT SESSION_LOST (the select ran on a new session) is trouble: drain, then back off. */
static void
test_select_session_lost_is_trouble(void **state)
{
	(void)state;
	struct outbox_relay_sm s = in_state(OUTBOX_RELAY_SELECT);
	struct outbox_relay_in in = idle();
	in.session_ok = false;
	in.held = false; /* the leases were forgotten */
	struct outbox_relay_sm n = next(s, ev(OUTBOX_RELAY_EV_SESSION_LOST), in);
	assert_state(n, OUTBOX_RELAY_BACKOFF_BROKER);
	assert_false(n.trouble);
	in.nbatches = 2;
	n = next(s, ev(OUTBOX_RELAY_EV_SESSION_LOST), in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
	assert_true(n.trouble);
}

/* PRODUCE DONE chooses: the next batch while the pipeline has room, else finish the oldest. */
static void
test_produce_done_chooses(void **state)
{
	(void)state;
	struct outbox_relay_sm p = in_state(OUTBOX_RELAY_PRODUCE);
	struct outbox_relay_in in = idle();
	in.nbatches = 1;
	assert_state(next(p, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_SELECT);
	in.nbatches = 4;
	assert_state(next(p, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_FINISH);
}

/* FINISH DONE (a clean batch) leaves the trouble flag as it was. */
static void
test_finish_done_keeps_trouble(void **state)
{
	(void)state;
	struct outbox_relay_sm f = in_state(OUTBOX_RELAY_FINISH);
	struct outbox_relay_sm n = next(f, ev(OUTBOX_RELAY_EV_DONE), idle());
	assert_state(n, OUTBOX_RELAY_SELECT);
	assert_false(n.trouble);
	/* trouble from an earlier batch is still backed off once the last one is finished */
	f.trouble = true;
	assert_state(next(f, ev(OUTBOX_RELAY_EV_DONE), idle()), OUTBOX_RELAY_BACKOFF_BROKER);
}

/* FINISH TROUBLE (rows failed or are to be retried): drain the rest, then back off. */
static void
test_finish_trouble_backs_off(void **state)
{
	(void)state;
	struct outbox_relay_sm f = in_state(OUTBOX_RELAY_FINISH);
	struct outbox_relay_in in = idle();
	assert_state(next(f, ev(OUTBOX_RELAY_EV_TROUBLE), in), OUTBOX_RELAY_BACKOFF_BROKER);
	in.nbatches = 1;
	struct outbox_relay_sm n = next(f, ev(OUTBOX_RELAY_EV_TROUBLE), in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.drain);
	assert_true(n.trouble);
}

/* FINISH DB_ERROR (the mark failed; the rows are sent again later): as TROUBLE. */
static void
test_finish_db_error_backs_off(void **state)
{
	(void)state;
	struct outbox_relay_sm f = in_state(OUTBOX_RELAY_FINISH);
	struct outbox_relay_in in = idle();
	struct outbox_relay_sm n = next(f, db_error(300), in);
	assert_state(n, OUTBOX_RELAY_BACKOFF_BROKER);
	in.nbatches = 1;
	n = next(f, db_error(300), in);
	assert_state(n, OUTBOX_RELAY_FINISH);
	assert_true(n.trouble);
}

/* LINGER DONE chooses: the linger over, select; a NOTIFY ended it early, linger again. */
static void
test_linger_done_chooses(void **state)
{
	(void)state;
	struct outbox_relay_sm l = in_state(OUTBOX_RELAY_LINGER);
	l.wait_ms = 10;
	struct outbox_relay_in in = idle();
	struct outbox_relay_sm n = next(l, ev(OUTBOX_RELAY_EV_DONE), in);
	assert_state(n, OUTBOX_RELAY_SELECT);
	assert_int_equal(n.wait_ms, 0);
	in.until_select = 4;
	n = next(l, ev(OUTBOX_RELAY_EV_DONE), in);
	assert_state(n, OUTBOX_RELAY_LINGER);
	assert_int_equal(n.wait_ms, 4);
}

/* WAIT DONE chooses: a NOTIFY or the poll selects; maintenance due maintains; a stop stops. */
static void
test_wait_done_chooses(void **state)
{
	(void)state;
	struct outbox_relay_sm w = in_state(OUTBOX_RELAY_WAIT);
	struct outbox_relay_in in = idle();
	assert_state(next(w, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_SELECT);
	in.until_maint = 0;
	assert_state(next(w, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_MAINTAIN);
	in.stopping = true;
	assert_state(next(w, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_STOPPED);
}

/* BACKOFF_DB DONE chooses: a lost session is made again first. */
static void
test_backoff_db_done_chooses(void **state)
{
	(void)state;
	struct outbox_relay_sm b = in_state(OUTBOX_RELAY_BACKOFF_DB);
	struct outbox_relay_in in = idle();
	in.session_ok = false;
	struct outbox_relay_sm n = next(b, ev(OUTBOX_RELAY_EV_DONE), in);
	assert_state(n, OUTBOX_RELAY_MAINTAIN);
	assert_int_equal(n.wait_ms, 0);
	in.session_ok = true;
	assert_state(next(b, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_SELECT);
}

/* BACKOFF_BROKER DONE chooses (the flag was cleared on the way in: no second back-off). */
static void
test_backoff_broker_done_chooses(void **state)
{
	(void)state;
	struct outbox_relay_sm b = in_state(OUTBOX_RELAY_BACKOFF_BROKER);
	assert_state(next(b, ev(OUTBOX_RELAY_EV_DONE), idle()), OUTBOX_RELAY_SELECT);
	struct outbox_relay_in in = idle();
	in.stopping = true;
	assert_state(next(b, ev(OUTBOX_RELAY_EV_DONE), in), OUTBOX_RELAY_STOPPED);
}

/* STOPPED is final, whatever happens. */
static void
test_stopped_is_final(void **state)
{
	(void)state;
	struct outbox_relay_in in = idle();
	in.stopping = false;
	in.session_ok = false;
	for (int k = OUTBOX_RELAY_EV_DONE; k <= OUTBOX_RELAY_EV_SESSION_LOST; k++)
		assert_state(next(in_state(OUTBOX_RELAY_STOPPED), ev(k), in), OUTBOX_RELAY_STOPPED);
}

/* --- invariants over random inputs --- */

static uint64_t rng = 0x5B0B5B0B12345678ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* pick returns one of the n events in ks at random. */
static enum outbox_relay_ev
pick(const enum outbox_relay_ev *ks, int n)
{
	return ks[rnd() % (uint64_t)n];
}

/* A simulated relay: the actions change only what they change in relay.c (PRODUCE adds a batch
 * in flight, FINISH removes one) and report the events they can report; everything else (stop,
 * session, leases, timers) varies at random. Whatever happens: leases and the session are
 * touched, and the thread stops, only with nothing in flight; the pipeline never overflows and
 * FINISH always has a batch to finish; a select needs held shards and no trouble; a produce
 * comes only from a select that found rows; waits are never longer than asked for. */
static void
test_invariants_of_a_simulated_relay(void **state)
{
	(void)state;
	static const enum outbox_relay_ev select_evs[] = {
		OUTBOX_RELAY_EV_ROWS, OUTBOX_RELAY_EV_ROWS, OUTBOX_RELAY_EV_EMPTY,
		OUTBOX_RELAY_EV_DB_ERROR, OUTBOX_RELAY_EV_SESSION_LOST
	};
	static const enum outbox_relay_ev finish_evs[] = { OUTBOX_RELAY_EV_DONE,
		                                           OUTBOX_RELAY_EV_DONE,
		                                           OUTBOX_RELAY_EV_TROUBLE,
		                                           OUTBOX_RELAY_EV_DB_ERROR };
	static const enum outbox_relay_ev maintain_evs[] = { OUTBOX_RELAY_EV_DONE,
		                                             OUTBOX_RELAY_EV_DONE,
		                                             OUTBOX_RELAY_EV_DB_ERROR };
	struct outbox_relay_sm s = in_state(OUTBOX_RELAY_START);
	int seen[OUTBOX_RELAY_STOPPED + 1] = { 0 }, nbatches = 0, pipeline = 4, stops = 0;
	bool stopping = false;

	for (int i = 0; i < 200000; i++) {
		enum outbox_relay_ev k = OUTBOX_RELAY_EV_DONE;
		switch (s.state) {
		case OUTBOX_RELAY_PRODUCE:
			nbatches++;
			assert_true(nbatches <= pipeline);
			break;
		case OUTBOX_RELAY_FINISH:
			assert_true(nbatches > 0);
			nbatches--;
			k = pick(finish_evs, 4);
			break;
		case OUTBOX_RELAY_SELECT:
			k = pick(select_evs, 5);
			break;
		case OUTBOX_RELAY_MAINTAIN:
			k = pick(maintain_evs, 3);
			break;
		case OUTBOX_RELAY_STOPPED:
			/* a new run */
			assert_int_equal(nbatches, 0);
			stops++;
			stopping = false;
			pipeline = 1 + (int)(rnd() % 4);
			s = in_state(OUTBOX_RELAY_START);
			continue;
		default:
			break;
		}
		uint64_t r = rnd();
		stopping = stopping || (r & 511) == 0;
		struct outbox_relay_in in = {
			.stopping = stopping,
			.nbatches = nbatches,
			.pipeline = pipeline,
			.session_ok = ((r >> 12) & 7) != 0,
			.held = ((r >> 16) & 7) != 0,
			.until_maint = (int64_t)((r >> 20) % 1200) - 100,
			.until_select = (int64_t)((r >> 32) % 30) - 15,
			.poll_ms = 500,
		};
		struct outbox_relay_event e = { .kind = k, .backoff_ms = 5 };
		struct outbox_relay_sm n = outbox_relay_next(s, e, &in);
		seen[n.state]++;
		if (n.state == OUTBOX_RELAY_MAINTAIN || n.state == OUTBOX_RELAY_STOPPED ||
		    n.state == OUTBOX_RELAY_BACKOFF_BROKER || n.state == OUTBOX_RELAY_LINGER)
			assert_int_equal(nbatches, 0);
		if (n.state == OUTBOX_RELAY_STOPPED)
			assert_true(stopping);
		if (n.state == OUTBOX_RELAY_SELECT) {
			assert_true(in.held);
			assert_false(n.trouble);
		}
		if (n.state == OUTBOX_RELAY_PRODUCE)
			assert_true(s.state == OUTBOX_RELAY_SELECT && k == OUTBOX_RELAY_EV_ROWS);
		if (n.state == OUTBOX_RELAY_WAIT)
			assert_true(n.wait_ms <= in.until_maint);
		if (n.state == OUTBOX_RELAY_LINGER)
			assert_true(n.wait_ms > 0 && n.wait_ms <= in.until_select);
		if (n.state == OUTBOX_RELAY_BACKOFF_DB)
			assert_int_equal(n.wait_ms, 5);
		s = n;
	}
	/* the walk reached every state, and stopped many times */
	for (int st = OUTBOX_RELAY_MAINTAIN; st <= OUTBOX_RELAY_STOPPED; st++)
		assert_true(seen[st] > 0);
	assert_true(stops > 10);
}

static void
test_state_names(void **state)
{
	(void)state;
	assert_string_equal(outbox_relay_state_name(OUTBOX_RELAY_BACKOFF_BROKER), "backoff_broker");
	assert_string_equal(outbox_relay_state_name(OUTBOX_RELAY_STOPPED), "stopped");
	assert_string_equal(outbox_relay_state_name((enum outbox_relay_state)99), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_choose_stopping_with_batches_finishes),
		cmocka_unit_test(test_choose_trouble_with_batches_finishes),
		cmocka_unit_test(test_choose_full_pipeline_finishes),
		cmocka_unit_test(test_choose_maintenance_due_with_batches_finishes),
		cmocka_unit_test(test_choose_stopping_idle_stops),
		cmocka_unit_test(test_choose_trouble_idle_backs_off),
		cmocka_unit_test(test_choose_new_session_maintains),
		cmocka_unit_test(test_choose_maintenance_due_idle_maintains),
		cmocka_unit_test(test_choose_lost_session_with_batches_keeps_working),
		cmocka_unit_test(test_choose_no_leases_waits_for_maintenance),
		cmocka_unit_test(test_choose_lingering_idle_lingers),
		cmocka_unit_test(test_choose_lingering_with_batches_finishes),
		cmocka_unit_test(test_choose_otherwise_selects),
		cmocka_unit_test(test_start_done_chooses),
		cmocka_unit_test(test_maintain_done_works),
		cmocka_unit_test(test_maintain_db_error_backs_off),
		cmocka_unit_test(test_select_rows_produces),
		cmocka_unit_test(test_select_empty_idle_waits),
		cmocka_unit_test(test_select_empty_with_batches_finishes),
		cmocka_unit_test(test_select_db_error_idle_backs_off),
		cmocka_unit_test(test_select_db_error_with_batches_drains),
		cmocka_unit_test(test_select_session_lost_is_trouble),
		cmocka_unit_test(test_produce_done_chooses),
		cmocka_unit_test(test_finish_done_keeps_trouble),
		cmocka_unit_test(test_finish_trouble_backs_off),
		cmocka_unit_test(test_finish_db_error_backs_off),
		cmocka_unit_test(test_linger_done_chooses),
		cmocka_unit_test(test_wait_done_chooses),
		cmocka_unit_test(test_backoff_db_done_chooses),
		cmocka_unit_test(test_backoff_broker_done_chooses),
		cmocka_unit_test(test_stopped_is_final),
		cmocka_unit_test(test_invariants_of_a_simulated_relay),
		cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
