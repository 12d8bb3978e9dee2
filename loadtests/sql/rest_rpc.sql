-- POST /rest/v1/rpc/add_them {"a": 1, "b": 2}
-- Exactly what Fluxbase sends for this request, in the same shape: one pipelined
-- round trip (BEGIN; caller and request settings in one statement; the generated
-- statement; COMMIT), the statement text as src/rest/sql generates it
-- (values bound as parameters there). :headers is the request's headers as
-- Fluxbase passes them to SQL (loadtests/run builds them: the Rust client's,
-- with a user token).
\set u random(1, 100)
\startpipeline
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"aud":"authenticated","exp":2000000000,"iat":1700000000,"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true), set_config('request.method', 'POST', true), set_config('request.path', '/rpc/add_them', true), set_config('request.headers', :headers, true), set_config('request.cookies', '{}', true), set_config('statement_timeout', '0', true), set_config('search_path', '"public", "extensions"', true);
with pgrst_args as (select * from json_to_record('{"a":1,"b":2}'::json) as _a("a" integer, "b" integer)) select 1::int8, null::int8, coalesce(to_json("public"."add_them"("a" := (select "a" from pgrst_args), "b" := (select "b" from pgrst_args)))::text, 'null'), null::int8, null::text, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '');
commit;
select pg_current_wal_insert_lsn()::text;
\endpipeline
