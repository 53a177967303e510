-- messages 004: attachments (issue 11, docs/files.md "Attachments").
-- A message may reference files its sender uploaded (ids of files.uploads, checked by
-- files.CheckAttachments before the send is queued). NULL for a message without any, so the
-- partial index costs nothing to the sends that attach nothing. The index answers
-- messages.CanReadAttachment: is there a message of this tenant attaching this file?
ALTER TABLE messages ADD COLUMN IF NOT EXISTS attachments uuid[];
CREATE INDEX IF NOT EXISTS messages_attachments ON messages USING gin (attachments)
    WHERE attachments IS NOT NULL;
