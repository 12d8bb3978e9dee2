\set id random(1, 10000)
with s as (select set_config('role', 'authenticated', true) r, set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-00000000000b","role":"authenticated"}', true) c)
select json_agg(t)::text from s, lateral (select id, payload from public.bench_items where id = :id) t;
