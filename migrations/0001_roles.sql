-- 0001_roles.sql
--
-- Owns: the cluster-wide roles Supabase projects expect, their memberships, and
-- the per-database grants on schema `public` (USAGE plus the default privileges
-- that give every table, sequence and function created later in `public` to
-- anon, authenticated and service_role, as Supabase does).
--
-- Roles are global to the cluster while this file runs once per database, and
-- many databases of one cluster run it (tests clone databases; users may bring
-- their own roles).  So every role is created only when missing, a concurrent
-- creator is tolerated, and existing roles are left as they are, except for the
-- two attributes RLS depends on (service_role must bypass RLS; anon and
-- authenticated must not), which are corrected when wrong.
--
-- Differences from Supabase, on purpose:
--   * admin roles (supabase_admin, supabase_*_admin, dashboard_user, ...) are
--     NOLOGIN and carry no SUPERUSER/CREATEROLE/REPLICATION: they exist so that
--     Supabase dumps (OWNER TO / GRANT ... TO these roles) restore cleanly.
--   * anon/authenticated/service_role stay NOINHERIT (Supabase later switched
--     them to INHERIT for pgsodium, which Fluxbase does not ship).
--   * no role-level settings (statement_timeout, search_path): those are
--     cluster-global and belong to the server's connection setup.
--   * a `postgres` role is created (NOLOGIN) only if the cluster lacks one,
--     because Supabase dumps and grants name it everywhere.

-- 1. Roles -------------------------------------------------------------------

DO $roles$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT * FROM (VALUES
      ('anon',                       'NOLOGIN NOINHERIT'),
      ('authenticated',              'NOLOGIN NOINHERIT'),
      ('service_role',               'NOLOGIN NOINHERIT BYPASSRLS'),
      ('authenticator',              'LOGIN NOINHERIT'),
      ('postgres',                   'NOLOGIN'),
      ('supabase_admin',             'NOLOGIN'),
      ('supabase_auth_admin',        'NOLOGIN NOINHERIT'),
      ('supabase_storage_admin',     'NOLOGIN NOINHERIT'),
      ('supabase_realtime_admin',    'NOLOGIN NOINHERIT'),
      ('supabase_functions_admin',   'NOLOGIN NOINHERIT'),
      ('supabase_replication_admin', 'NOLOGIN'),
      ('supabase_read_only_user',    'NOLOGIN'),
      ('dashboard_user',             'NOLOGIN'),
      ('pgbouncer',                  'NOLOGIN')
    ) AS t(name, options)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r.name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', r.name, r.options);
      EXCEPTION
        -- another database of this cluster created it concurrently
        WHEN duplicate_object OR unique_violation THEN NULL;
      END;
    END IF;
  END LOOP;
END
$roles$;

-- RLS correctness does not survive a pre-existing role with the wrong
-- attributes, so fix exactly those (and nothing else) when they are wrong.
DO $attrs$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
             WHERE rolname = 'service_role' AND NOT rolbypassrls) THEN
    ALTER ROLE service_role BYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
             WHERE rolname = 'anon' AND (rolbypassrls OR rolsuper)) THEN
    ALTER ROLE anon NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
             WHERE rolname = 'authenticated' AND (rolbypassrls OR rolsuper)) THEN
    ALTER ROLE authenticated NOSUPERUSER NOBYPASSRLS;
  END IF;
END
$attrs$;

-- 2. Memberships ---------------------------------------------------------------
-- authenticator may SET ROLE to the three API roles (PostgREST's model);
-- postgres gets the API and admin roles, as Supabase grants them, so that a
-- non-superuser `postgres` can still manage policies on auth/storage/realtime.

DO $members$
DECLARE
  m record;
BEGIN
  FOR m IN
    SELECT * FROM (VALUES
      ('anon',                    'authenticator'),
      ('authenticated',           'authenticator'),
      ('service_role',            'authenticator'),
      ('anon',                    'postgres'),
      ('authenticated',           'postgres'),
      ('service_role',            'postgres'),
      ('supabase_auth_admin',     'postgres'),
      ('supabase_storage_admin',  'postgres'),
      ('supabase_realtime_admin', 'postgres')
    ) AS t(granted, member)
  LOOP
    IF NOT EXISTS (
      SELECT 1
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles u ON u.oid = am.member
      WHERE g.rolname = m.granted AND u.rolname = m.member
    ) THEN
      BEGIN
        EXECUTE format('GRANT %I TO %I', m.granted, m.member);
      EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
        -- a user-made membership graph that would become circular: leave it
        WHEN invalid_grant_operation THEN
          RAISE NOTICE 'fluxbase: not granting % to %: %', m.granted, m.member, SQLERRM;
      END;
    END IF;
  END LOOP;
END
$members$;

-- 3. Schema public (per database) --------------------------------------------

GRANT USAGE ON SCHEMA public TO postgres, anon, authenticated, service_role;

-- Objects created later in public by the migrating superuser (the role running
-- this file), by `postgres` and by `supabase_admin` are granted to the API
-- roles automatically; RLS then decides what each role sees.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
