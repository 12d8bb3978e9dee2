begin;
select set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"sub":"00000000-0000-0000-0000-00000000000b","role":"authenticated"}', true);
insert into public.bench_items (owner_ref, payload) values (1, 'pgbench');
commit;
