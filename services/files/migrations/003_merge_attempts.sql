-- The merge worker's failed attempts at an upload (merge.c), counted on the row so that the
-- limit (SB_FILES_MERGE_ATTEMPTS) holds across restarts: a merge request delivered again after
-- sb-files restarts goes on counting instead of starting over.
ALTER TABLE uploads ADD COLUMN merge_attempts int NOT NULL DEFAULT 0;
