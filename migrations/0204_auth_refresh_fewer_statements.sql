-- 0204_auth_refresh_fewer_statements.sql
--
-- Owns: the speed of fluxbase.auth_refresh() (0201_auth_refresh.sql), same
-- contract and results. Profiled under load (loadtests/run auth), most of
-- the grant's database time was executor start-up for its ten statements,
-- not their work. The common path (a live token, rotation on) now runs
-- four instead of nine:
--   * token, session and user in one join, locking only the token's row;
--   * revoke, child token and session touch in one statement (two
--     data-modifying CTEs around the insert);
--   * the amr claims and the user JSON in one select.
-- The rare paths (expiry, reuse within the interval, reuse as theft, no
-- rotation) are unchanged.

CREATE OR REPLACE FUNCTION fluxbase.auth_refresh(
  p_token text,
  p_next text,
  p_rotate boolean,
  p_reuse_interval double precision,
  p_timebox double precision,
  p_inactivity double precision
) RETURNS TABLE (
  outcome text,
  session_id uuid,
  user_id uuid,
  aal text,
  amr jsonb,
  refresh_token text,
  user_json jsonb
)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  cur text;
BEGIN
  SELECT t.id AS t_id, t.token AS t_token, t.revoked AS t_revoked, t.updated_at AS t_updated_at,
         s.id AS s_id, s.user_id AS s_user_id, s.created_at AS s_created_at, s.refreshed_at AS s_refreshed_at,
         s.updated_at AS s_updated_at, s.not_after AS s_not_after, s.aal AS s_aal,
         (u.banned_until IS NOT NULL AND u.banned_until > now()) OR u.deleted_at IS NOT NULL AS u_gone
    INTO r
    FROM auth.refresh_tokens t
    JOIN auth.sessions s ON s.id = t.session_id
    JOIN auth.users u ON u.id = s.user_id
   WHERE t.token = p_token
     FOR UPDATE OF t;
  -- No token, no session, or a banned or deleted user.
  IF NOT FOUND THEN
    outcome := 'not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  IF r.u_gone THEN
    outcome := 'not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  session_id := r.s_id;
  user_id := r.s_user_id;

  IF (p_timebox > 0 AND extract(epoch FROM now() - r.s_created_at) > p_timebox)
     OR (p_inactivity > 0 AND extract(epoch FROM (now() AT TIME ZONE 'utc')
                                      - coalesce(r.s_refreshed_at, r.s_updated_at AT TIME ZONE 'utc')) > p_inactivity)
     OR (r.s_not_after IS NOT NULL AND r.s_not_after < now()) THEN
    DELETE FROM auth.sessions x WHERE x.id = r.s_id;
    outcome := 'expired';
    RETURN NEXT;
    RETURN;
  END IF;

  IF r.t_revoked THEN
    IF extract(epoch FROM now() - r.t_updated_at) <= p_reuse_interval THEN
      SELECT c.token INTO cur FROM auth.refresh_tokens c
       WHERE c.session_id = r.s_id AND NOT c.revoked ORDER BY c.id DESC LIMIT 1;
    END IF;
    IF cur IS NULL THEN
      -- Reuse of a rotated token: taken as theft, the session goes.
      DELETE FROM auth.sessions x WHERE x.id = r.s_id;
      outcome := 'reused';
      RETURN NEXT;
      RETURN;
    END IF;
    refresh_token := cur;
  ELSIF p_rotate THEN
    WITH revoked AS (
           UPDATE auth.refresh_tokens x SET revoked = true, updated_at = now() WHERE x.id = r.t_id
         ),
         touched AS (
           UPDATE auth.sessions x SET refreshed_at = now() AT TIME ZONE 'utc', updated_at = now() WHERE x.id = r.s_id
         )
    INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
    VALUES ('00000000-0000-0000-0000-000000000000'::uuid, p_next, r.s_user_id::text, false, now(), now(), r.t_token, r.s_id);
    refresh_token := p_next;
  ELSE
    UPDATE auth.sessions x SET refreshed_at = now() AT TIME ZONE 'utc', updated_at = now() WHERE x.id = r.s_id;
    refresh_token := r.t_token;
  END IF;

  aal := coalesce(r.s_aal::text, 'aal1');
  SELECT coalesce((SELECT jsonb_agg(jsonb_build_object('method', a.authentication_method,
                                                      'timestamp', extract(epoch FROM a.created_at)::bigint)
                                   ORDER BY a.created_at DESC)
                     FROM auth.mfa_amr_claims a WHERE a.session_id = r.s_id), '[]'::jsonb),
         fluxbase.auth_user_json(r.s_user_id)
    INTO amr, user_json;
  outcome := 'ok';
  RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION fluxbase.auth_refresh(text, text, boolean, double precision, double precision, double precision) FROM PUBLIC;
