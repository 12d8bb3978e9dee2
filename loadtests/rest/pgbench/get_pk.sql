\set id random(1, 10000)
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-00000000000b","role":"authenticated"}', true);
select json_agg(t)::text from (select id, payload from public.bench_items where id = :id) t;
commit;
