-- GET /rest/v1/items?id=eq.<id>&select=* with a user JWT (RLS: owner = auth.uid())
-- Exactly what Fluxbase sends for this request, in the same shape: one pipelined
-- round trip (caller and request settings, read-only, in one statement; the
-- generated statement; no BEGIN/COMMIT: a read is the implicit transaction
-- the pipeline's Sync ends), the statement text as src/rest/sql generates it
-- (values bound as parameters there). :headers is the request's headers as
-- Fluxbase passes them to SQL (loadtests/run builds them: the Rust client's,
-- with a user token).
\set u random(1, 100)
\set k random(1, :nitems / 100 - 1)
\set id :k * 100 + :u - 1
\startpipeline
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"aud":"authenticated","exp":2000000000,"iat":1700000000,"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true), set_config('request.method', 'GET', true), set_config('request.path', '/items', true), set_config('request.headers', :headers, true), set_config('request.cookies', '{}', true), set_config('statement_timeout', '0', true), set_config('search_path', '"public", "extensions"', true), set_config('transaction_read_only', 'on', true);
select count(*)::int8, null::int8, coalesce(json_agg(_pgrst_t), '[]')::text, null::int8, null::text, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') from (select "pgrst_1"."id", "pgrst_1"."owner", "pgrst_1"."category_id", "pgrst_1"."name", "pgrst_1"."price" from "public"."items" as "pgrst_1" where "pgrst_1"."id" = :id) as _pgrst_t;
\endpipeline
