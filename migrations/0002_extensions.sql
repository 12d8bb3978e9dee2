-- 0002_extensions.sql
--
-- Owns: schema `extensions` and the two extensions Supabase installs there by
-- default that ship with PostgreSQL itself: "uuid-ossp" (uuid_generate_v4()) and
-- pgcrypto (crypt(), gen_salt(), digest(), ...).  Supabase SQL and dumps call
-- them schema-qualified, e.g. `extensions.uuid_generate_v4()`.
--
-- Left out: pgjwt, pg_graphql, pgsodium/vault, pg_stat_statements and the
-- pg_cron/pg_net event triggers; they are not part of Debian's postgresql-15
-- package or not something Fluxbase provides.
--
-- IF NOT EXISTS: a database may already have these (e.g. in another schema);
-- that is fine and left alone.

CREATE SCHEMA IF NOT EXISTS extensions;

CREATE EXTENSION IF NOT EXISTS "uuid-ossp" WITH SCHEMA extensions;
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA extensions;

GRANT USAGE ON SCHEMA extensions TO postgres, anon, authenticated, service_role;
GRANT ALL ON SCHEMA extensions TO dashboard_user;
