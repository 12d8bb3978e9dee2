-- 0302_storage_tag_key.sql
--
-- Owns: storage.fluxbase_secrets -- a key only Fluxbase reads (as the pool's
-- superuser), generated once here. src/storage/tag.rs uses it to seal each
-- object row's (id, version) pair in metadata.fluxbaseTag, so bytes are only
-- ever served for a row Fluxbase itself wrote: a row inserted by other means
-- (SQL, RPC) that copies another object's `version` cannot reach its bytes.
-- Kept in the database so the database and the object store stay a
-- self-consistent pair whatever happens to the data directory.

CREATE TABLE storage.fluxbase_secrets (
  name  text PRIMARY KEY,
  value text NOT NULL
);
REVOKE ALL ON storage.fluxbase_secrets FROM PUBLIC, anon, authenticated, service_role;
ALTER TABLE storage.fluxbase_secrets ENABLE ROW LEVEL SECURITY;

-- Two version-4 UUIDs: 244 bits from PostgreSQL's strong random source.
INSERT INTO storage.fluxbase_secrets (name, value)
VALUES ('object_tag', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
