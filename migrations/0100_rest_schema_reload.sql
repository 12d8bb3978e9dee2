-- 0100_rest_schema_reload.sql
--
-- Owns: the event triggers that tell the REST schema cache to reload after
-- DDL, as PostgREST's documented setup (and Supabase) does: every DDL
-- command and every drop sends `NOTIFY pgrst, 'reload schema'`. The REST
-- module LISTENs on `pgrst` on a dedicated connection. NOTIFY is
-- transactional, so the cache reloads after the DDL commits.

CREATE OR REPLACE FUNCTION extensions.pgrst_ddl_watch() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pgrst', 'reload schema');
END;
$$;

CREATE OR REPLACE FUNCTION extensions.pgrst_drop_watch() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('pgrst', 'reload schema');
END;
$$;

DROP EVENT TRIGGER IF EXISTS pgrst_ddl_watch;
CREATE EVENT TRIGGER pgrst_ddl_watch ON ddl_command_end
  EXECUTE FUNCTION extensions.pgrst_ddl_watch();

DROP EVENT TRIGGER IF EXISTS pgrst_drop_watch;
CREATE EVENT TRIGGER pgrst_drop_watch ON sql_drop
  EXECUTE FUNCTION extensions.pgrst_drop_watch();
