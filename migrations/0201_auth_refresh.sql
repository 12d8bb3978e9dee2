-- 0201_auth_refresh.sql
--
-- Owns: fluxbase.auth_refresh(), the whole refresh-token grant
-- (POST /auth/v1/token?grant_type=refresh_token) in one statement, so the
-- grant costs one round trip (src/auth/tokens.rs calls it with a prepared
-- statement outside any explicit transaction: the call is its own
-- transaction).
--
-- In one call, holding the presented token's row lock:
--   * lookup of the token, its session and its user;
--   * session limits: lifetime (timebox), inactivity, not_after: the session
--     is deleted and the outcome is 'expired';
--   * reuse detection: a revoked token presented again within the reuse
--     interval of its rotation gets the session's current token (racing
--     tabs); any other reuse deletes the whole session (tokens cascade) and
--     the outcome is 'reused';
--   * rotation: the token is revoked and `p_next` inserted as its child (or,
--     without rotation, the token is kept), and the session touched;
--   * the user JSON and the session's amr claims for the access token.
--
-- Outcomes: 'ok', 'not_found' (unknown token, no session, banned or deleted
-- user), 'expired', 'reused'. Durations are in seconds; 0 = unlimited.

CREATE FUNCTION fluxbase.auth_refresh(
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
  t auth.refresh_tokens%ROWTYPE;
  s auth.sessions%ROWTYPE;
  gone boolean;
  cur text;
BEGIN
  SELECT * INTO t FROM auth.refresh_tokens r WHERE r.token = p_token FOR UPDATE;
  IF NOT FOUND OR t.session_id IS NULL THEN
    outcome := 'not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT * INTO s FROM auth.sessions x WHERE x.id = t.session_id;
  IF NOT FOUND THEN
    outcome := 'not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT (u.banned_until IS NOT NULL AND u.banned_until > now()) OR u.deleted_at IS NOT NULL
    INTO gone FROM auth.users u WHERE u.id = s.user_id;
  IF gone IS NULL OR gone THEN
    outcome := 'not_found';
    RETURN NEXT;
    RETURN;
  END IF;
  session_id := s.id;
  user_id := s.user_id;

  IF (p_timebox > 0 AND extract(epoch FROM now() - s.created_at) > p_timebox)
     OR (p_inactivity > 0 AND extract(epoch FROM (now() AT TIME ZONE 'utc')
                                      - coalesce(s.refreshed_at, s.updated_at AT TIME ZONE 'utc')) > p_inactivity)
     OR (s.not_after IS NOT NULL AND s.not_after < now()) THEN
    DELETE FROM auth.sessions x WHERE x.id = s.id;
    outcome := 'expired';
    RETURN NEXT;
    RETURN;
  END IF;

  IF t.revoked THEN
    IF extract(epoch FROM now() - t.updated_at) <= p_reuse_interval THEN
      SELECT c.token INTO cur FROM auth.refresh_tokens c
       WHERE c.session_id = s.id AND NOT c.revoked ORDER BY c.id DESC LIMIT 1;
    END IF;
    IF cur IS NULL THEN
      -- Reuse of a rotated token: taken as theft, the session goes.
      DELETE FROM auth.sessions x WHERE x.id = s.id;
      outcome := 'reused';
      RETURN NEXT;
      RETURN;
    END IF;
    refresh_token := cur;
  ELSIF p_rotate THEN
    UPDATE auth.refresh_tokens r SET revoked = true, updated_at = now() WHERE r.id = t.id;
    INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
    VALUES ('00000000-0000-0000-0000-000000000000'::uuid, p_next, s.user_id::text, false, now(), now(), t.token, s.id);
    UPDATE auth.sessions x SET refreshed_at = now() AT TIME ZONE 'utc', updated_at = now() WHERE x.id = s.id;
    refresh_token := p_next;
  ELSE
    UPDATE auth.sessions x SET refreshed_at = now() AT TIME ZONE 'utc', updated_at = now() WHERE x.id = s.id;
    refresh_token := t.token;
  END IF;

  aal := coalesce(s.aal::text, 'aal1');
  SELECT coalesce(jsonb_agg(jsonb_build_object('method', a.authentication_method,
                                               'timestamp', extract(epoch FROM a.created_at)::bigint)
                            ORDER BY a.created_at DESC), '[]'::jsonb)
    INTO amr FROM auth.mfa_amr_claims a WHERE a.session_id = s.id;
  user_json := fluxbase.auth_user_json(s.user_id);
  outcome := 'ok';
  RETURN NEXT;
END
$$;

REVOKE ALL ON FUNCTION fluxbase.auth_refresh(text, text, boolean, double precision, double precision, double precision) FROM PUBLIC;
