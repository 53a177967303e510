-- pgbench_message.sql: the single-message transaction of the messages service, written the
-- way the service writes it (services/messages/commit.c, events.c) but for one message and
-- without the membership and duplicate checks: bump the conversation's seq, insert the message,
-- insert its outbox row, commit. Run by bench/messages_bench.sh with -M prepared against the
-- same schema and the same durable settings as the end-to-end run, on 50 conversations of the
-- tenant 'pgbench' (ids 00000000-0000-4000-8000-0000000000NN) that the script creates.
\set c random(1, 50)
BEGIN;
UPDATE messages.conversations SET last_seq = last_seq + 1, last_message_id = gen_random_uuid(), activity_us = (extract(epoch from clock_timestamp()) * 1000000)::bigint WHERE tenant_id = 'pgbench' AND id = ('00000000-0000-4000-8000-' || lpad(:c::text, 12, '0'))::uuid RETURNING last_seq AS seq, last_message_id AS mid, id AS conv \gset
INSERT INTO messages.messages (tenant_id, id, conversation_id, seq, sender_id, content, content_type, metadata, idempotency_key, created_at) VALUES ('pgbench', :mid, :conv, :seq, 'pgbench-user', repeat('x', 200), 'text/plain', '{}'::jsonb, NULL, now());
INSERT INTO messages.outbox (aggregate_type, aggregate_id, event_id, event_type, topic, source, subject, payload, traceparent) VALUES ('conversation', :conv, gen_random_uuid(), 'sb.message.created', 'sb.messages.v1', '/tenants/pgbench/conversations', :mid, decode(repeat('ab', 330), 'hex'), NULL);
COMMIT;
