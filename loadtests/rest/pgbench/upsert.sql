\set id random(1, 10000)
begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-00000000000b","role":"authenticated"}', true);
insert into public.bench_items (id, owner, owner_ref, payload) values (:id, '00000000-0000-0000-0000-00000000000b', 2, 'up') on conflict (id) do update set owner_ref = excluded.owner_ref, payload = excluded.payload;
commit;
