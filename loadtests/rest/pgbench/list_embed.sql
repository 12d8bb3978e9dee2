\set o random(1, 100)
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-00000000000b","role":"authenticated"}', true);
select json_agg(t)::text from (select i.id, i.payload, (select row_to_json(o) from (select name from public.bench_owners b where b.id = i.owner_ref) o) as bench_owners from public.bench_items i where i.owner_ref = :o order by i.id limit 10) t;
commit;
