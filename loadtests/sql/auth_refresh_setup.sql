-- Set-up for auth_refresh.sql: 64 users, each with one session (user_agent
-- pgbench-<n>, n = pgbench client id) and one live refresh token.
insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, created_at, updated_at, raw_app_meta_data, raw_user_meta_data)
select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', 'pgbench-' || n || '@example.com', '', now(), now(), now(),
       '{"provider":"email","providers":["email"]}', '{}'
  from generate_series(0, 63) n
on conflict do nothing;
insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent)
select gen_random_uuid(), u.id, now(), now(), 'aal1', 'pgbench-' || substr(u.email, 9, position('@' in u.email) - 9)
  from auth.users u where u.email like 'pgbench-%@example.com'
   and not exists (select 1 from auth.sessions s where s.user_id = u.id);
insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, session_id)
select '00000000-0000-0000-0000-000000000000', md5(random()::text), s.user_id::text, false, now(), now(), s.id
  from auth.sessions s where s.user_agent like 'pgbench-%'
   and not exists (select 1 from auth.refresh_tokens t where t.session_id = s.id and not t.revoked);
