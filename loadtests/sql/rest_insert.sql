-- POST /rest/v1/items (one row, Prefer: return=minimal)
-- Exactly what Fluxbase sends for this request, in the same shape: one pipelined
-- round trip (BEGIN; caller and request settings in one statement; the generated
-- statement; COMMIT), the statement text as src/rest/sql generates it
-- (values bound as parameters there). :headers is the request's headers as
-- Fluxbase passes them to SQL (loadtests/run builds them: the Rust client's,
-- with a user token).
\set u random(1, 100)
\set id random(1000000000, 9000000000000000)
\startpipeline
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"aud":"authenticated","exp":2000000000,"iat":1700000000,"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true), set_config('request.method', 'POST', true), set_config('request.path', '/items', true), set_config('request.headers', :headers, true), set_config('request.cookies', '{}', true), set_config('statement_timeout', '0', true), set_config('search_path', '"public", "extensions"', true);
with pgrst_source as (insert into "public"."items" ("id", "owner", "category_id", "name", "price") select _pgrst_r."id", _pgrst_r."owner", _pgrst_r."category_id", _pgrst_r."name", _pgrst_r."price" from json_array_elements(('[{"id":' || :id || ',"owner":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '","category_id":1,"name":"new item","price":5}]')::json) as _pgrst_j(v) cross join lateral json_populate_record(null::"public"."items", _pgrst_j.v) as _pgrst_r) select 0::int8, null::int8, null::text, null::int8, null::text;
commit;
select pg_current_wal_insert_lsn()::text;
\endpipeline
