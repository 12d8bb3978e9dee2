-- 0300_storage_versions.sql
--
-- Owns: the index the storage orphan sweep uses to ask "does any row still
-- name this version?" (src/storage/sweep.rs). Object bytes are stored under
-- their version (src/storage/keys.rs data_path), so the version is the link
-- between a row and its bytes.

CREATE INDEX IF NOT EXISTS idx_objects_version ON storage.objects (version);
