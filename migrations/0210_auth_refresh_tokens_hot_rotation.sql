-- 0210_auth_refresh_tokens_hot_rotation.sql
--
-- Owns: the indexes and fill factor of auth.refresh_tokens (0003_auth.sql,
-- 0208).
--
-- Every refresh grant inserts a token and revokes its parent (`revoked`,
-- `updated_at`). GoTrue's schema indexes both of those columns, so the
-- revocation could never be a HOT update: it wrote a new entry into every
-- index of the table, and the insert another, twelve index entries a grant.
-- Index maintenance was about a third of PostgreSQL's CPU per grant.
--
-- What Fluxbase reads from this table, and the index that serves it:
--   * a token by its text: refresh_tokens_token_unique;
--   * a session's newest live token (the reuse window, MFA step-up) and a
--     session's tokens (revocation, the cascade when a session goes):
--     refresh_tokens_session_id_id_idx (session_id, id), walked backwards;
--   * the rotated tokens old enough to go, for the cleanup
--     (src/auth/cleanup.rs): refresh_tokens_created_at_idx (created_at). A
--     token revoked 24 hours ago was created before then; the creation time
--     never changes, so this index does not stand in the way of HOT.
-- GoTrue's other indexes serve nothing Fluxbase runs:
--   * refresh_tokens_parent_idx (parent),
--   * refresh_tokens_instance_id_user_id_idx (instance_id, user_id),
--   * refresh_tokens_updated_at_idx (updated_at DESC),
--   * refresh_tokens_session_id_revoked_idx (session_id, revoked), replaced
--     by (session_id, id).
-- With them gone no index covers `revoked` or `updated_at`, and a fill
-- factor of 70 leaves room on each page for the revoked version, so most
-- revocations are HOT (no index entry at all) and a grant writes four index
-- entries instead of twelve. Measured with `loadtests refresh` (128
-- sessions, two rounds each way, interleaved on one server): 4,114–4,369
-- grants/s and 262–271 µs of PostgreSQL CPU per grant before, 5,077–5,138/s
-- and 203–204 µs after; about three revocations in four were HOT.

CREATE INDEX IF NOT EXISTS refresh_tokens_session_id_id_idx ON auth.refresh_tokens (session_id, id);
CREATE INDEX IF NOT EXISTS refresh_tokens_created_at_idx ON auth.refresh_tokens (created_at);
DROP INDEX IF EXISTS auth.refresh_tokens_session_id_revoked_idx;
DROP INDEX IF EXISTS auth.refresh_tokens_parent_idx;
DROP INDEX IF EXISTS auth.refresh_tokens_instance_id_user_id_idx;
DROP INDEX IF EXISTS auth.refresh_tokens_updated_at_idx;
ALTER TABLE auth.refresh_tokens SET (fillfactor = 70);
