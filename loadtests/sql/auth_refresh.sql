-- P10 baseline: the refresh-token grant's SQL as Fluxbase runs it (one call of
-- fluxbase.auth_refresh, migration 0201), each pgbench client rotating its own
-- session's token (set up by auth_refresh_setup.sql) and keeping the new one.
-- Run with -M prepared -D tok=none.
select refresh_token as tok
  from fluxbase.auth_refresh(
         case when :tok = 'none' then (select t.token from auth.refresh_tokens t join auth.sessions s on s.id = t.session_id
                                        where s.user_agent = 'pgbench-' || :client_id and not t.revoked
                                        order by t.id desc limit 1)
              else :tok end,
         substr(md5(random()::text), 1, 22), true, 10, 0, 0) \gset
