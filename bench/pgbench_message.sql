-- pgbench_message.sql: the peer of bench/messages_bench.sh. One message per transaction doing
-- the same work per message as the messages service's group commit (services/messages/
-- commit.c, the statements of store.c, the outbox row of events.c), with batches of one:
--   round trip 1 (a pipeline): BEGIN; lock the conversation row (b_lock, SELECT ... FOR UPDATE,
--     reading last_seq); look for a stored message with the same id, or the same sender and
--     idempotency key (b_existing, both index lookups); check that the sender is a member
--     (b_members);
--   round trip 2 (a pipeline): insert the message (b_insert, the client's random id, 200
--     bytes of content as msgload sends, metadata {}, no idempotency key, as msgload sends);
--     advance the conversation's last_seq and last message (b_update); insert the outbox row
--     (outbox_insert: a 380-byte payload, the size of the service's packed MessageCreated
--     for such a message, and a traceparent); NOTIFY sb_outbox; COMMIT.
-- The statements are the service's, with one-element arrays. Differences, because pgbench
-- cannot use a query's result inside a pipeline (\gset): the service reads last_seq from the
-- lock and sends seq + 1; here the insert reads last_seq + 1 from the locked row again (one
-- more primary-key lookup) and the update writes last_seq + 1; the peer does not act on the
-- results of the duplicate and membership checks (in this benchmark every send is new and
-- from a member, on both sides); the event id is gen_random_uuid() made by PostgreSQL (the
-- service sends a UUIDv7; event_id has no index) and the payload is made by repeat() instead
-- of being sent as hex. The message id is random, made from two pgbench random numbers.
-- Run by bench/messages_bench.sh with -M prepared against the same schema and the same
-- durable PostgreSQL as the end-to-end run, on 50 conversations of the tenant 'pgbench' (ids
-- 00000000-0000-4000-8000-0000000000NN) with the member 'pgbench-user', which the script
-- creates, with the outbox relay stopped.
\set c random(1, 50)
\set a random(0, 1152921504606846975)
\set b random(0, 1152921504606846975)
\startpipeline
BEGIN;
SELECT c.tenant_id, c.id::text, c.last_seq FROM messages.conversations c
	WHERE (c.tenant_id, c.id) IN (SELECT t, i FROM unnest(ARRAY['pgbench']::text[],
		ARRAY[('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid]::uuid[]) AS k(t, i))
	ORDER BY c.tenant_id, c.id FOR UPDATE;
WITH k AS (SELECT * FROM unnest(ARRAY['pgbench']::text[],
		ARRAY[(lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid]::uuid[],
		ARRAY['pgbench-user']::text[], ARRAY[NULL]::text[]) WITH ORDINALITY AS k(t, i, s, ik, o))
	SELECT k.o, m.id::text, m.conversation_id::text, m.seq, m.sender_id,
		(extract(epoch from m.created_at) * 1000)::bigint
	FROM k JOIN messages.messages m ON m.tenant_id = k.t AND m.id = k.i
	UNION
	SELECT k.o, m.id::text, m.conversation_id::text, m.seq, m.sender_id,
		(extract(epoch from m.created_at) * 1000)::bigint
	FROM k JOIN messages.messages m ON m.tenant_id = k.t AND m.sender_id = k.s
		AND m.idempotency_key = k.ik WHERE k.ik IS NOT NULL;
SELECT k.o FROM unnest(ARRAY['pgbench']::text[],
		ARRAY[('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid]::uuid[],
		ARRAY['pgbench-user']::text[]) WITH ORDINALITY AS k(t, c, s, o)
	WHERE EXISTS (SELECT 1 FROM messages.members m WHERE m.tenant_id = k.t
		AND m.conversation_id = k.c AND m.user_id = k.s);
\endpipeline
\startpipeline
INSERT INTO messages.messages (tenant_id, id, conversation_id, seq, sender_id, content,
		content_type, metadata, idempotency_key, created_at)
	SELECT t, i, c, s, snd, ct, ty, md::jsonb, ik, now() FROM unnest(ARRAY['pgbench']::text[],
		ARRAY[(lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid]::uuid[],
		ARRAY[('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid]::uuid[],
		ARRAY[(SELECT x.last_seq + 1 FROM messages.conversations x WHERE x.tenant_id = 'pgbench'
			AND x.id = ('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid)]::bigint[],
		ARRAY['pgbench-user']::text[], ARRAY[left(repeat('abcdefghijklmnopqrstuvwxyz ', 8), 200)]::text[],
		ARRAY['text/plain']::text[], ARRAY['{}']::text[], ARRAY[NULL]::text[])
	AS k(t, i, c, s, snd, ct, ty, md, ik);
UPDATE messages.conversations c SET last_seq = c.last_seq + 1, last_message_id = k.m,
		activity_us = (extract(epoch from clock_timestamp()) * 1000000)::bigint
	FROM unnest(ARRAY['pgbench']::text[],
		ARRAY[('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid]::uuid[],
		ARRAY[(lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid]::uuid[])
	AS k(t, i, m) WHERE c.tenant_id = k.t AND c.id = k.i;
INSERT INTO messages.outbox (aggregate_type, aggregate_id, event_id, event_type, topic, source,
		subject, payload, traceparent)
	SELECT 'conversation', a, e, t, 'sb.messages.v1', s, sub, decode(p, 'hex'), tp
	FROM unnest(ARRAY[('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid]::uuid[],
		ARRAY[gen_random_uuid()]::uuid[], ARRAY['io.switchboard.message.created.v1']::text[],
		ARRAY['/tenants/pgbench/conversations/00000000-0000-4000-8000-' || lpad(:c::text, 12, '0')]::text[],
		ARRAY[(lpad(to_hex(:a::bigint), 16, '0') || lpad(to_hex(:b::bigint), 16, '0'))::uuid::text]::text[],
		ARRAY[repeat('ab', 380)]::text[],
		ARRAY['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01']::text[])
	WITH ORDINALITY AS k(a, e, t, s, sub, p, tp, o) ORDER BY o;
NOTIFY sb_outbox;
COMMIT;
\endpipeline
