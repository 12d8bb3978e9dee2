-- 0005_realtime.sql
--
-- Owns: schema `realtime` -- table realtime.messages (Broadcast/Presence
-- authorization for private channels and broadcast-from-database), the helpers
-- realtime.topic(), realtime.send(), realtime.send_binary(),
-- realtime.broadcast_changes(), grants as Supabase has them, and the (empty)
-- publication `supabase_realtime` that Supabase projects add their tables to
-- (`alter publication supabase_realtime add table ...`).
--
-- Shape checked against supabase/realtime @ 833cf36c (its
-- priv/repo/tenant_db_dump_15.sql and tenant migrations): same columns, order,
-- types, defaults, primary key (id, inserted_at), check, index and function
-- signatures.
--
-- Differences from Supabase, on purpose:
--   * realtime.messages is a plain table, not PARTITION BY RANGE (inserted_at):
--     Supabase's Realtime server creates a partition per day and inserts fail
--     without one; Fluxbase's server prunes old rows itself instead.  Columns
--     and keys are identical, so policies and inserts work unchanged.
--   * left out: realtime.subscription, realtime.schema_migrations and the
--     WAL/RLS machinery of Supabase's postgres_changes (apply_rls,
--     list_changes, cast, check_equality_op, is_visible_through_filters,
--     quote_wal2json, build_prepared_statement_sql, to_regrole, ...) and its
--     types: Fluxbase decodes the WAL and checks RLS itself.
--
-- Private channels: Fluxbase sets `realtime.topic` (and the role/claims)
-- before checking SELECT (may join/receive) or INSERT (may send) on
-- realtime.messages, so policies such as
--   create policy p on realtime.messages for select to authenticated
--   using (realtime.topic() like 'room-%');
-- behave as on Supabase.  RLS is enabled; no policies are created here.

CREATE SCHEMA realtime;
ALTER SCHEMA realtime OWNER TO supabase_admin;

-- 1. Messages ---------------------------------------------------------------------

CREATE TABLE realtime.messages (
  topic          text NOT NULL,
  extension      text NOT NULL,
  payload        jsonb,
  event          text,
  private        boolean DEFAULT false,
  updated_at     timestamp without time zone NOT NULL DEFAULT now(),
  inserted_at    timestamp without time zone NOT NULL DEFAULT now(),
  id             uuid NOT NULL DEFAULT gen_random_uuid(),
  binary_payload bytea,
  CONSTRAINT messages_pkey PRIMARY KEY (id, inserted_at),
  CONSTRAINT messages_payload_exclusive CHECK (payload IS NULL OR binary_payload IS NULL)
);
-- Replay of private broadcasts, newest first per topic.
CREATE INDEX messages_inserted_at_topic_index ON realtime.messages (inserted_at DESC, topic)
  WHERE extension = 'broadcast' AND private IS TRUE;

ALTER TABLE realtime.messages ENABLE ROW LEVEL SECURITY;

-- 2. Functions ----------------------------------------------------------------------

-- The sub-topic of the channel being authorized (the part after 'realtime:').
CREATE FUNCTION realtime.topic() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT nullif(current_setting('realtime.topic', true), '')::text
$$;

-- Broadcast from the database: a row in realtime.messages is a broadcast
-- `event` with `payload` on `topic`.  Runs as the caller (INSERT policies on
-- realtime.messages apply); a failure is only a warning, never aborting the
-- caller's transaction.  The payload gets an "id" (the message id) if it has none.
CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
  message_id uuid := gen_random_uuid();
BEGIN
  BEGIN
    PERFORM set_config('realtime.topic', topic, true);
    INSERT INTO realtime.messages (id, payload, event, topic, private, extension)
    VALUES (
      message_id,
      CASE WHEN payload ? 'id' THEN payload
           ELSE jsonb_set(payload, '{id}', to_jsonb(message_id)) END,
      event, topic, private, 'broadcast');
  EXCEPTION
    WHEN OTHERS THEN
      RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
  END;
END
$$;

CREATE FUNCTION realtime.send_binary(payload bytea, event text, topic text, private boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  BEGIN
    PERFORM set_config('realtime.topic', topic, true);
    INSERT INTO realtime.messages (id, binary_payload, event, topic, private, extension)
    VALUES (gen_random_uuid(), payload, event, topic, private, 'broadcast');
  EXCEPTION
    WHEN OTHERS THEN
      RAISE WARNING 'WarnSendingBroadcastMessage: %', SQLERRM;
  END;
END
$$;

-- For row triggers:
--   perform realtime.broadcast_changes('topic:' || new.id, tg_op, tg_op,
--     tg_table_name, tg_table_schema, new, old);
-- sends {"schema","table","operation","record","old_record"} as a broadcast.
CREATE FUNCTION realtime.broadcast_changes(
  topic_name   text,
  event_name   text,
  operation    text,
  table_name   text,
  table_schema text,
  new          record,
  old          record,
  level        text DEFAULT 'ROW'
)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  IF level = 'STATEMENT' THEN
    RAISE EXCEPTION 'function can only be triggered for each row, not for each statement';
  END IF;
  IF operation NOT IN ('INSERT', 'UPDATE', 'DELETE') THEN
    RAISE EXCEPTION 'Unexpected operation type: %', operation;
  END IF;
  PERFORM realtime.send(
    jsonb_build_object(
      'old_record', old,
      'record',     new,
      'operation',  operation,
      'table',      table_name,
      'schema',     table_schema),
    event_name,
    topic_name);
EXCEPTION
  WHEN OTHERS THEN
    RAISE EXCEPTION 'Failed to process the row: %', SQLERRM;
END
$$;

-- 3. Ownership ----------------------------------------------------------------------

ALTER TABLE realtime.messages OWNER TO supabase_realtime_admin;
ALTER FUNCTION realtime.topic() OWNER TO supabase_realtime_admin;
ALTER FUNCTION realtime.send(jsonb, text, text, boolean) OWNER TO supabase_realtime_admin;
ALTER FUNCTION realtime.send_binary(bytea, text, text, boolean) OWNER TO supabase_realtime_admin;
ALTER FUNCTION realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  OWNER TO supabase_realtime_admin;

-- 4. Privileges ---------------------------------------------------------------------

GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA realtime TO postgres WITH GRANT OPTION;
GRANT ALL ON SCHEMA realtime TO supabase_realtime_admin WITH GRANT OPTION;

GRANT SELECT, INSERT, UPDATE ON realtime.messages TO anon, authenticated, service_role;
GRANT ALL ON realtime.messages TO postgres, dashboard_user;
GRANT ALL ON ALL ROUTINES IN SCHEMA realtime TO postgres, dashboard_user;

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
  GRANT ALL ON TABLES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
  GRANT ALL ON SEQUENCES TO postgres, dashboard_user;
ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA realtime
  GRANT ALL ON ROUTINES TO postgres, dashboard_user;

-- 5. Publication ----------------------------------------------------------------------
-- Per database; empty, as in a new Supabase project.

DO $pub$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = 'supabase_realtime') THEN
    CREATE PUBLICATION supabase_realtime;
  END IF;
END
$pub$;
