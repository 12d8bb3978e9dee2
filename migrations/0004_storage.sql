-- 0004_storage.sql
--
-- Owns: schema `storage` -- tables buckets, objects, s3_multipart_uploads,
-- s3_multipart_uploads_parts in storage-api's current shape; the helper
-- functions policies and the list endpoint use (foldername, filename,
-- extension, search, operation, allow_only_operation, allow_any_operation,
-- get_size_by_bucket, can_insert_object); the updated_at and bucket-name
-- triggers; RLS enabled; grants as Supabase gives them.
--
-- Shape checked against supabase/storage @ 4fa61fba (migrations/tenant
-- 0001..0063 applied to a scratch database and dumped): same column names,
-- order, types, defaults, constraint and index names, function signatures.
-- The function bodies here are Fluxbase's own, with the same results.
--
-- Access model (Supabase's): anon, authenticated and service_role hold ALL on
-- buckets and objects and RLS decides (no policies are created here, so
-- anon/authenticated see nothing until the project adds policies;
-- service_role bypasses RLS).
--
-- Left out on purpose:
--   * storage.migrations (storage-api's own bookkeeping);
--   * the protect_buckets_delete / protect_objects_delete triggers (0055): they
--     make plain `DELETE FROM storage.objects` fail unless the session sets
--     storage.allow_delete_query = 'true'; Fluxbase's own storage code and
--     users' SQL would both have to know that;
--   * analytics / iceberg / vector buckets (buckets_analytics,
--     buckets_vectors, iceberg_*, vector_indexes) -- separate products; the
--     `buckettype` enum keeps all three values so bucket rows load;
--   * search_v2, search_by_timestamp, list_objects_with_delimiter,
--     list_multipart_uploads_with_delimiter, get_common_prefix: internal to
--     storage-api's S3 and v2 list paths, not called by policies;
--   * the temporary buckets_versioning_dark_check (forces versioning_status
--     to 'DISABLED' while Supabase rolls versioning out); the columns and the
--     other two versioning checks are kept.

CREATE SCHEMA storage;
ALTER SCHEMA storage OWNER TO supabase_admin;

-- 1. Types and tables ------------------------------------------------------------

CREATE TYPE storage.buckettype AS ENUM ('STANDARD', 'ANALYTICS', 'VECTOR');

CREATE TABLE storage.buckets (
  id                 text NOT NULL,
  name               text NOT NULL,
  owner              uuid,
  created_at         timestamptz DEFAULT now(),
  updated_at         timestamptz DEFAULT now(),
  public             boolean DEFAULT false,
  avif_autodetection boolean DEFAULT false,
  file_size_limit    bigint,
  allowed_mime_types text[],
  owner_id           text,
  type               storage.buckettype NOT NULL DEFAULT 'STANDARD',
  versioning_status  text NOT NULL DEFAULT 'DISABLED',
  CONSTRAINT buckets_pkey PRIMARY KEY (id),
  CONSTRAINT buckets_versioning_status_check
    CHECK (versioning_status IN ('DISABLED', 'ENABLED', 'SUSPENDED')),
  CONSTRAINT buckets_versioning_standard_only_check
    CHECK (type = 'STANDARD' OR versioning_status = 'DISABLED')
);
COMMENT ON COLUMN storage.buckets.owner IS 'Field is deprecated, use owner_id instead';
CREATE UNIQUE INDEX bname ON storage.buckets (name);

CREATE TABLE storage.objects (
  id               uuid NOT NULL DEFAULT gen_random_uuid(),
  bucket_id        text,
  name             text,
  owner            uuid,
  created_at       timestamptz DEFAULT now(),
  updated_at       timestamptz DEFAULT now(),
  last_accessed_at timestamptz DEFAULT now(),
  metadata         jsonb,
  path_tokens      text[] GENERATED ALWAYS AS (string_to_array(name, '/')) STORED,
  version          text,
  owner_id         text,
  user_metadata    jsonb,
  archived_at      timestamptz,
  is_delete_marker boolean NOT NULL DEFAULT false,
  is_versioned     boolean NOT NULL DEFAULT false,
  CONSTRAINT objects_pkey PRIMARY KEY (id),
  CONSTRAINT "objects_bucketId_fkey" FOREIGN KEY (bucket_id) REFERENCES storage.buckets (id)
);
COMMENT ON COLUMN storage.objects.owner IS 'Field is deprecated, use owner_id instead';
CREATE UNIQUE INDEX bucketid_objname ON storage.objects (bucket_id, name);
CREATE INDEX name_prefix_search ON storage.objects (name text_pattern_ops);
CREATE INDEX idx_objects_bucket_id_name ON storage.objects (bucket_id, name COLLATE "C");
CREATE INDEX idx_objects_bucket_id_name_lower ON storage.objects (bucket_id, lower(name) COLLATE "C");

CREATE TABLE storage.s3_multipart_uploads (
  id               text NOT NULL,
  in_progress_size bigint NOT NULL DEFAULT 0,
  upload_signature text NOT NULL,
  bucket_id        text NOT NULL,
  key              text COLLATE "C" NOT NULL,
  version          text NOT NULL,
  owner_id         text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  user_metadata    jsonb,
  metadata         jsonb,
  CONSTRAINT s3_multipart_uploads_pkey PRIMARY KEY (id),
  CONSTRAINT s3_multipart_uploads_bucket_id_fkey FOREIGN KEY (bucket_id)
    REFERENCES storage.buckets (id)
);
CREATE INDEX idx_multipart_uploads_list ON storage.s3_multipart_uploads (bucket_id, key, created_at);

CREATE TABLE storage.s3_multipart_uploads_parts (
  id          uuid NOT NULL DEFAULT gen_random_uuid(),
  upload_id   text NOT NULL,
  size        bigint NOT NULL DEFAULT 0,
  part_number integer NOT NULL,
  bucket_id   text NOT NULL,
  key         text COLLATE "C" NOT NULL,
  etag        text NOT NULL,
  owner_id    text,
  version     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT s3_multipart_uploads_parts_pkey PRIMARY KEY (id),
  CONSTRAINT s3_multipart_uploads_parts_bucket_id_fkey FOREIGN KEY (bucket_id)
    REFERENCES storage.buckets (id),
  CONSTRAINT s3_multipart_uploads_parts_upload_id_fkey FOREIGN KEY (upload_id)
    REFERENCES storage.s3_multipart_uploads (id) ON DELETE CASCADE
);

-- 2. Path helpers (used in policies: `(storage.foldername(name))[1] = auth.uid()::text`)
-- Same results as storage-api's: foldername('a/b/c.png') = '{a,b}',
-- filename(...) = 'c.png', extension(...) = 'png'; extension of a name
-- without a dot is the whole file name, as in Supabase.

CREATE FUNCTION storage.foldername(name text) RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
  SELECT parts[1 : array_length(parts, 1) - 1]
  FROM (SELECT string_to_array(name, '/') AS parts) AS s
$$;

CREATE FUNCTION storage.filename(name text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT parts[array_length(parts, 1)]
  FROM (SELECT string_to_array(name, '/') AS parts) AS s
$$;

CREATE FUNCTION storage.extension(name text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT reverse(split_part(reverse(parts[array_length(parts, 1)]), '.', 1))
  FROM (SELECT string_to_array(name, '/') AS parts) AS s
$$;

-- 3. Operation helpers: the storage server sets `storage.operation` (e.g.
-- 'storage.object.upload') per request so policies can tell operations apart.

CREATE FUNCTION storage.operation() RETURNS text
LANGUAGE sql STABLE
AS $$
  SELECT current_setting('storage.operation', true)
$$;

-- Compare operation names with or without their 'storage.' prefix.
CREATE FUNCTION storage.allow_only_operation(expected_operation text) RETURNS boolean
LANGUAGE sql STABLE
AS $$
  SELECT CASE
    WHEN expected_operation IS NULL OR expected_operation IN ('', 'storage.') THEN false
    ELSE coalesce(
      regexp_replace(storage.operation(), '^storage\.', '')
        = regexp_replace(expected_operation, '^storage\.', ''),
      false)
  END
$$;

CREATE FUNCTION storage.allow_any_operation(expected_operations text[]) RETURNS boolean
LANGUAGE sql STABLE
AS $$
  SELECT EXISTS (
    SELECT 1
    FROM unnest(expected_operations) AS e(op)
    WHERE e.op IS NOT NULL AND e.op <> ''
      AND regexp_replace(e.op, '^storage\.', '')
          = regexp_replace(storage.operation(), '^storage\.', '')
  )
$$;

-- 4. Functions storage-api calls --------------------------------------------------

CREATE FUNCTION storage.get_size_by_bucket() RETURNS TABLE (size bigint, bucket_id text)
LANGUAGE sql STABLE
AS $$
  SELECT sum((o.metadata ->> 'size')::bigint)::bigint, o.bucket_id
  FROM storage.objects AS o
  GROUP BY o.bucket_id
$$;

-- Checks the caller's INSERT policy on objects without keeping the row: the
-- insert runs as the caller, then a PT200 error rolls it back.
CREATE FUNCTION storage.can_insert_object(bucketid text, name text, owner uuid, metadata jsonb)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
  INSERT INTO storage.objects (bucket_id, name, owner, metadata)
  VALUES (bucketid, name, owner, metadata);
  RAISE SQLSTATE 'PT200' USING
    MESSAGE = 'ROLLBACK',
    DETAIL = 'rollback successful insert';
END
$$;

-- storage.search: what `POST /storage/v1/object/list/{bucket}` runs, as the
-- caller (so RLS on storage.objects filters it).  Lists the direct children of
-- `prefix` (storage-api passes it ending in '/', or ''): one row per "folder"
-- (id and timestamps NULL) and one per object, names relative to `prefix`.
--   * sortcolumn 'name' (default): prefix || search matched case-insensitively
--     as a literal prefix; folders and files interleaved, ordered by
--     lower(name) in byte order; `levels` is not used.
--   * sortcolumn updated_at / created_at / last_accessed_at: storage-api
--     passes LIKE-escaped prefix/search; name ILIKE prefix || search || '%';
--     the folders first (by name), then the files at depth `levels` ordered by
--     that column.
-- sortorder 'asc' (default) or 'desc'; limits capped at 1500; offsets skips
-- entries.
CREATE FUNCTION storage.search(
  prefix     text,
  bucketname text,
  limits     integer DEFAULT 100,
  levels     integer DEFAULT 1,
  offsets    integer DEFAULT 0,
  search     text DEFAULT '',
  sortcolumn text DEFAULT 'name',
  sortorder  text DEFAULT 'asc'
)
RETURNS TABLE (
  name             text,
  id               uuid,
  updated_at       timestamptz,
  created_at       timestamptz,
  last_accessed_at timestamptz,
  metadata         jsonb
)
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
  v_limit   integer := least(coalesce(limits, 100), 1500);
  v_offset  integer := greatest(coalesce(offsets, 0), 0);
  v_base    text    := coalesce(prefix, '');
  v_match   text    := coalesce(prefix, '') || coalesce(search, '');
  v_lower   text    := lower(coalesce(prefix, '') || coalesce(search, ''));
  v_asc     boolean := lower(coalesce(sortorder, 'asc')) <> 'desc';
  v_column  text    := lower(coalesce(sortcolumn, 'name'));
  v_dir     text;
  v_first   integer;
  v_depth   integer;
  v_upper   text;
BEGIN
  IF v_column NOT IN ('updated_at', 'created_at', 'last_accessed_at') THEN
    v_column := 'name';
  END IF;
  v_dir := CASE WHEN v_asc THEN 'ASC' ELSE 'DESC' END;

  IF v_column = 'name' THEN
    -- Exclusive upper bound of the prefix range, so the lower(name) index applies.
    -- (left NULL when the last character has no usable successor; the
    -- starts_with() test below is what decides membership either way)
    IF v_lower <> '' AND ascii(right(v_lower, 1)) < 55295 THEN
      v_upper := left(v_lower, -1) || chr(ascii(right(v_lower, 1)) + 1);
    END IF;

    RETURN QUERY EXECUTE format($q$
      WITH matched AS (
        SELECT o.name, o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata,
               strpos(substr(o.name, length($1) + 1), '/') AS slash
        FROM storage.objects AS o
        WHERE o.bucket_id = $3
          AND lower(o.name) COLLATE "C" >= $2
          AND ($4::text IS NULL OR lower(o.name) COLLATE "C" < $4)
          AND starts_with(lower(o.name), $2)
      ),
      -- one row per folder (case-insensitively); its spelling is taken from
      -- the first object met in the requested order
      folders AS (
        SELECT DISTINCT ON (sort_key)
               sort_key, folder AS name
        FROM (SELECT lower(left(m.name, length($1) + m.slash)) COLLATE "C" AS sort_key,
                     left(m.name, length($1) + m.slash) AS folder,
                     lower(m.name) COLLATE "C" AS object_key
              FROM matched AS m WHERE m.slash > 0) AS f
        ORDER BY sort_key, object_key %s
      ),
      entries AS (
        SELECT f.sort_key,
               substr(rtrim(f.name, '/'), length($5) + 1) AS name,
               NULL::uuid AS id, NULL::timestamptz AS updated_at,
               NULL::timestamptz AS created_at, NULL::timestamptz AS last_accessed_at,
               NULL::jsonb AS metadata
        FROM folders AS f
        UNION ALL
        SELECT lower(m.name) COLLATE "C", substr(m.name, length($5) + 1),
               m.id, m.updated_at, m.created_at, m.last_accessed_at, m.metadata
        FROM matched AS m WHERE m.slash = 0
      )
      SELECT e.name, e.id, e.updated_at, e.created_at, e.last_accessed_at, e.metadata
      FROM entries AS e
      ORDER BY e.sort_key %s
      LIMIT $6 OFFSET $7
    $q$, v_dir, v_dir)
    USING v_match, v_lower, bucketname, v_upper, v_base, v_limit, v_offset;
    RETURN;
  END IF;

  -- Sorting by a timestamp: tokens [v_first : v_depth] of path_tokens name the
  -- child relative to `prefix` (string_to_array('', '/') is empty, hence coalesce).
  v_first := coalesce(array_length(string_to_array(v_base, '/'), 1), 1);
  v_depth := coalesce(array_length(string_to_array(v_match, '/'), 1), 1);

  RETURN QUERY EXECUTE format($q$
    SELECT e.name, e.id, e.updated_at, e.created_at, e.last_accessed_at, e.metadata
    FROM (
      SELECT 0 AS grp, f.folder AS name, NULL::uuid AS id, NULL::timestamptz AS updated_at,
             NULL::timestamptz AS created_at, NULL::timestamptz AS last_accessed_at,
             NULL::jsonb AS metadata, NULL::timestamptz AS sort_ts
      FROM (SELECT DISTINCT array_to_string(o.path_tokens[$1:$2], '/') AS folder
            FROM storage.objects AS o
            WHERE o.bucket_id = $4
              AND o.name ILIKE $3 || '%%'
              AND array_length(o.path_tokens, 1) <> $2) AS f
      UNION ALL
      SELECT 1, array_to_string(o.path_tokens[$1:$2], '/'), o.id, o.updated_at,
             o.created_at, o.last_accessed_at, o.metadata, o.%I
      FROM storage.objects AS o
      WHERE o.bucket_id = $4
        AND o.name ILIKE $3 || '%%'
        AND array_length(o.path_tokens, 1) = $2
    ) AS e
    ORDER BY e.grp,
             CASE WHEN e.grp = 0 THEN e.name END COLLATE "C" %s,
             e.sort_ts %s,
             e.name COLLATE "C" %s
    LIMIT $5 OFFSET $6
  $q$, v_column, v_dir, v_dir, v_dir)
  USING v_first, v_depth, v_match, bucketname, v_limit, v_offset;
END
$fn$;

-- 5. Triggers ----------------------------------------------------------------------

CREATE FUNCTION storage.update_updated_at_column() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END
$$;

CREATE TRIGGER update_objects_updated_at
  BEFORE UPDATE ON storage.objects
  FOR EACH ROW EXECUTE FUNCTION storage.update_updated_at_column();

CREATE FUNCTION storage.enforce_bucket_name_length() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF length(NEW.name) > 100 THEN
    RAISE EXCEPTION 'bucket name "%" is too long (% characters). Max is 100.',
      NEW.name, length(NEW.name);
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER enforce_bucket_name_length_trigger
  BEFORE INSERT OR UPDATE OF name ON storage.buckets
  FOR EACH ROW EXECUTE FUNCTION storage.enforce_bucket_name_length();

-- 6. Row level security -------------------------------------------------------------

ALTER TABLE storage.buckets                    ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.objects                    ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.s3_multipart_uploads       ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage.s3_multipart_uploads_parts ENABLE ROW LEVEL SECURITY;

-- 7. Ownership ----------------------------------------------------------------------

DO $owner$
DECLARE
  o record;
BEGIN
  FOR o IN
    SELECT c.relname FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'storage'::regnamespace AND c.relkind IN ('r', 'p')
  LOOP
    EXECUTE format('ALTER TABLE storage.%I OWNER TO supabase_storage_admin', o.relname);
  END LOOP;
  FOR o IN
    SELECT t.typname FROM pg_catalog.pg_type t
    WHERE t.typnamespace = 'storage'::regnamespace AND t.typtype = 'e'
  LOOP
    EXECUTE format('ALTER TYPE storage.%I OWNER TO supabase_storage_admin', o.typname);
  END LOOP;
  FOR o IN
    SELECT p.oid::regprocedure AS sig FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'storage'::regnamespace
  LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO supabase_storage_admin', o.sig);
  END LOOP;
END
$owner$;

-- 8. Privileges ---------------------------------------------------------------------

GRANT USAGE ON SCHEMA storage TO postgres, anon, authenticated, service_role;
GRANT ALL ON SCHEMA storage TO supabase_storage_admin, dashboard_user;

GRANT ALL ON storage.buckets, storage.objects TO anon, authenticated, service_role;
GRANT ALL ON storage.buckets, storage.objects TO postgres WITH GRANT OPTION;

GRANT ALL ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts
  TO service_role, postgres;
GRANT SELECT ON storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts
  TO anon, authenticated;

GRANT ALL ON ALL ROUTINES IN SCHEMA storage
  TO anon, authenticated, service_role, postgres, dashboard_user;

-- Objects created later in storage (by the migrating superuser or postgres)
-- are granted to the API roles, as Supabase's storage schema does.
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA storage
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA storage
  GRANT ALL ON TABLES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA storage
  GRANT ALL ON SEQUENCES TO postgres, anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA storage
  GRANT ALL ON FUNCTIONS TO postgres, anon, authenticated, service_role;
