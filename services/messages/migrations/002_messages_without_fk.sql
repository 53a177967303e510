-- messages 002: the message table no longer has a foreign key to conversations.
-- Every insert of a message is made by the group commit (services/messages/commit.c) inside
-- the transaction that has just locked the conversation row (SELECT ... FOR UPDATE) and read
-- its last_seq, and conversations are never deleted, so the per-row check the key ran (a
-- trigger locking the conversation row again, for each message) could never fail. It cost
-- about half of the insert's time (docs/decisions.md, "The messages table has no foreign key").
-- members keeps its key: it is written rarely.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_tenant_id_conversation_id_fkey;
