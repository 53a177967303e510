/* relay_sm.c: the transition function of the relay thread's state machine (the states, the
 * events and the table are in outbox.h's relay section and in relay.c's header comment).
 *
 * Pure: no I/O, no clock, no globals. Everything it looks at comes in as arguments (the current
 * state, the event its action reported, a snapshot of the relay's inputs), so every transition
 * is tested without PostgreSQL or Kafka (relay_test.c). */
#include "outbox.h"

/* outbox_relay_step builds the next machine: state s, the same trouble flag, no parameters. */
static struct outbox_relay_sm
outbox_relay_step(const struct outbox_relay_sm *cur, enum outbox_relay_state s)
{
	return (struct outbox_relay_sm){ .state = s, .trouble = cur->trouble };
}

/* outbox_relay_work is the choice once the session and the leases are in order (rules 5-7):
 * wait while no shard is held, linger after a short batch, else select the next batch. */
static struct outbox_relay_sm
outbox_relay_work(const struct outbox_relay_sm *cur, const struct outbox_relay_in *in)
{
	struct outbox_relay_sm n;

	if (!in->held) {
		n = outbox_relay_step(cur, OUTBOX_RELAY_WAIT);
		n.wait_ms = in->until_maint;
		return n;
	}
	if (in->until_select > 0) {
		/* Finish a batch in flight meanwhile (not a drain), or wait out the linger. */
		if (in->nbatches > 0)
			return outbox_relay_step(cur, OUTBOX_RELAY_FINISH);
		n = outbox_relay_step(cur, OUTBOX_RELAY_LINGER);
		n.wait_ms = in->until_select;
		return n;
	}
	return outbox_relay_step(cur, OUTBOX_RELAY_SELECT);
}

/* outbox_relay_choose is the choice made after most events (rules 1-7, the first that holds). */
static struct outbox_relay_sm
outbox_relay_choose(const struct outbox_relay_sm *cur, const struct outbox_relay_in *in)
{
	struct outbox_relay_sm n;

	/* 1. Batches in flight are finished before anything else touches the leases or the
	 * session, when the pipeline is full, after trouble and when stopping. */
	if (in->nbatches > 0 && (in->stopping || cur->trouble || in->nbatches >= in->pipeline ||
	                         in->until_maint <= 0)) {
		n = outbox_relay_step(cur, OUTBOX_RELAY_FINISH);
		n.drain = true;
		return n;
	}
	/* 2. Nothing in flight any more: stop. */
	if (in->stopping)
		return outbox_relay_step(cur, OUTBOX_RELAY_STOPPED);
	/* 3. Something failed and every batch is settled: back off before selecting again. */
	if (in->nbatches == 0 && cur->trouble) {
		n = outbox_relay_step(cur, OUTBOX_RELAY_BACKOFF_BROKER);
		n.trouble = false;
		return n;
	}
	/* 4. Leases change, and the session is re-made, only with no batch in flight. */
	if (in->nbatches == 0 && (!in->session_ok || in->until_maint <= 0))
		return outbox_relay_step(cur, OUTBOX_RELAY_MAINTAIN);
	return outbox_relay_work(cur, in);
}

struct outbox_relay_sm
outbox_relay_next(struct outbox_relay_sm cur, struct outbox_relay_event ev,
                  const struct outbox_relay_in *in)
{
	struct outbox_relay_sm n;

	switch (cur.state) {
	case OUTBOX_RELAY_STOPPED:
		return outbox_relay_step(&cur, OUTBOX_RELAY_STOPPED);
	case OUTBOX_RELAY_MAINTAIN:
		if (ev.kind == OUTBOX_RELAY_EV_DB_ERROR) {
			n = outbox_relay_step(&cur, OUTBOX_RELAY_BACKOFF_DB);
			n.wait_ms = ev.backoff_ms;
			return n;
		}
		/* The session and the leases were just seen to: straight to the work. */
		return outbox_relay_work(&cur, in);
	case OUTBOX_RELAY_SELECT:
		switch (ev.kind) {
		case OUTBOX_RELAY_EV_ROWS:
			return outbox_relay_step(&cur, OUTBOX_RELAY_PRODUCE);
		case OUTBOX_RELAY_EV_EMPTY:
			/* Nothing new: finish a batch in flight (not a drain), or wait for a
			 * NOTIFY or the poll, never past the next maintenance. */
			if (in->nbatches > 0)
				return outbox_relay_step(&cur, OUTBOX_RELAY_FINISH);
			n = outbox_relay_step(&cur, OUTBOX_RELAY_WAIT);
			n.wait_ms = in->poll_ms < in->until_maint ? in->poll_ms : in->until_maint;
			return n;
		case OUTBOX_RELAY_EV_DB_ERROR:
			if (in->nbatches == 0) {
				n = outbox_relay_step(&cur, OUTBOX_RELAY_BACKOFF_DB);
				n.wait_ms = ev.backoff_ms;
				return n;
			}
			cur.trouble = true; /* finish the batches in flight, then back off */
			return outbox_relay_choose(&cur, in);
		case OUTBOX_RELAY_EV_SESSION_LOST:
			cur.trouble = true;
			return outbox_relay_choose(&cur, in);
		default:
			return outbox_relay_choose(&cur, in);
		}
	case OUTBOX_RELAY_FINISH:
		/* Acknowledged rows whose marking failed stay unrelayed: sent again (same ce_id).
		 */
		if (ev.kind == OUTBOX_RELAY_EV_TROUBLE || ev.kind == OUTBOX_RELAY_EV_DB_ERROR)
			cur.trouble = true;
		return outbox_relay_choose(&cur, in);
	case OUTBOX_RELAY_START:
	case OUTBOX_RELAY_PRODUCE:
	case OUTBOX_RELAY_LINGER:
	case OUTBOX_RELAY_WAIT:
	case OUTBOX_RELAY_BACKOFF_DB:
	case OUTBOX_RELAY_BACKOFF_BROKER:
	default:
		return outbox_relay_choose(&cur, in);
	}
}

const char *
outbox_relay_state_name(enum outbox_relay_state s)
{
	switch (s) {
	case OUTBOX_RELAY_START:
		return "start";
	case OUTBOX_RELAY_MAINTAIN:
		return "maintain";
	case OUTBOX_RELAY_SELECT:
		return "select";
	case OUTBOX_RELAY_PRODUCE:
		return "produce";
	case OUTBOX_RELAY_FINISH:
		return "finish";
	case OUTBOX_RELAY_LINGER:
		return "linger";
	case OUTBOX_RELAY_WAIT:
		return "wait";
	case OUTBOX_RELAY_BACKOFF_DB:
		return "backoff_db";
	case OUTBOX_RELAY_BACKOFF_BROKER:
		return "backoff_broker";
	case OUTBOX_RELAY_STOPPED:
		return "stopped";
	}
	return "?";
}
