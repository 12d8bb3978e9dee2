-- POST /rest/v1/items (one row, Prefer: return=minimal)
-- Exactly what Fluxbase sends for this request, in the same shape: one pipelined
-- round trip (BEGIN; caller and request settings in one statement; the generated
-- statement; COMMIT), the statement text as src/rest/sql generates it
-- (values bound as parameters there; the constant ones are literals here).
-- :headers is the request's headers as Fluxbase passes them to SQL
-- (loadtests/run builds them: the Rust client's, with a user token).
-- The new row names one of the fixture's 20 categories, as the clients' rows do.
\set u random(1, 100)
\set cat random(1, 20)
\set id random(1000000000, 9000000000000000)
\startpipeline
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"aud":"authenticated","exp":2000000000,"iat":1700000000,"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true), set_config('request.method', 'POST', true), set_config('request.path', '/items', true), set_config('request.headers', :headers, true), set_config('request.cookies', '{}', true), set_config('statement_timeout', '0', true), set_config('search_path', '"public", "extensions"', true);
with pgrst_source as (insert into "public"."items" ("category_id", "id", "name", "owner", "price") values (:cat::"pg_catalog"."int4", :id::"pg_catalog"."int8", 'new item'::"pg_catalog"."text", ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::"pg_catalog"."uuid", 5::"pg_catalog"."int4") returning 1) select 0::int8, null::int8, null::text, null::int8, null::text, nullif(current_setting('response.headers', true), ''), nullif(current_setting('response.status', true), '') from (select count(*) from pgrst_source) as _pgrst_n;
commit;
select pg_current_wal_insert_lsn()::text;
\endpipeline
