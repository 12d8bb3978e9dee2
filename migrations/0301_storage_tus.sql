-- 0301_storage_tus.sql
--
-- Owns: storage.fluxbase_resumable_uploads -- the state of TUS resumable
-- uploads (/storage/v1/upload/resumable, src/storage/tus.rs). Each PATCH
-- stores its bytes as one part object `tus/<id>/<offset>`; `parts` lists
-- them in order. The final PATCH concatenates the parts into the object's
-- version key and writes the storage.objects row as the caller.
--
-- Only Fluxbase's storage code reads this table (as the pool's superuser);
-- API roles get no access.

CREATE TABLE storage.fluxbase_resumable_uploads (
  id             uuid PRIMARY KEY,
  bucket_id      text NOT NULL REFERENCES storage.buckets (id) ON DELETE CASCADE,
  name           text NOT NULL,
  owner_id       text,
  upsert         boolean NOT NULL DEFAULT false,
  upload_length  bigint NOT NULL CHECK (upload_length >= 0),
  upload_offset  bigint NOT NULL DEFAULT 0,
  content_type   text NOT NULL,
  cache_control  text NOT NULL,
  user_metadata  jsonb,
  parts          jsonb NOT NULL DEFAULT '[]',
  created_at     timestamptz NOT NULL DEFAULT now()
);
-- The schema's default privileges grant new tables to the API roles; take
-- that back, and keep RLS on with no policies as a second lock.
REVOKE ALL ON storage.fluxbase_resumable_uploads FROM PUBLIC, anon, authenticated, service_role;
ALTER TABLE storage.fluxbase_resumable_uploads ENABLE ROW LEVEL SECURITY;
