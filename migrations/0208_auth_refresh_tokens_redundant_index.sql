-- 0208_auth_refresh_tokens_redundant_index.sql
--
-- Owns: the indexes of auth.refresh_tokens (0003_auth.sql).
--
-- refresh_tokens_instance_id_idx (instance_id) is a prefix of
-- refresh_tokens_instance_id_user_id_idx (instance_id, user_id), which serves
-- every lookup by instance_id that it served, so it only cost writes: every
-- refresh grant inserts one token and revokes another (an update of indexed
-- columns), and each of those wrote to it. GoTrue's schema carries both for
-- history; nothing reads it. Measured with `loadtests refresh` (32 sessions,
-- two rounds each way on one server): PostgreSQL CPU per grant 309–336 µs
-- without it against 340–365 µs with it.

DROP INDEX IF EXISTS auth.refresh_tokens_instance_id_idx;
