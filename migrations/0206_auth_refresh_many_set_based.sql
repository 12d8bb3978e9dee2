-- 0206_auth_refresh_many_set_based.sql
--
-- Owns: the speed of fluxbase.auth_refresh_many() (0205), same contract and
-- results. 0205 called fluxbase.auth_refresh() once per grant, so a batch of
-- n grants still started n × four statements. Now the common grants of a
-- batch go through one statement together, and only the others are run one
-- by one, in order, as before.
--
-- A grant is common when its token is live, its user neither banned nor
-- deleted, its session within its lifetime and inactivity limits, rotation
-- is on, and neither its token nor its session appears in any other grant
-- of the batch. Common grants touch disjoint sessions that no other grant of
-- the batch touches, so running them first, together, gives each grant
-- exactly what it would get alone after the grants before it (0205's
-- promise): the per-grant path only ever writes its own session's rows.
--
-- Every token of the batch is locked first, in token order, as the per-grant
-- path locks one; a failure of the whole statement (a session deleted under
-- it, say) fails the batch, which src/auth/refresh_batch.rs then reruns
-- grant by grant.

CREATE OR REPLACE FUNCTION fluxbase.auth_refresh_many(
  p_tokens text[],
  p_nexts text[],
  p_rotate boolean,
  p_reuse_interval double precision,
  p_timebox double precision,
  p_inactivity double precision
) RETURNS TABLE (
  ord integer,
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
  done integer[] := '{}';
  rec record;
BEGIN
  FOR rec IN
    WITH g AS (
      SELECT x.i::integer AS i, x.tok, x.nxt
        FROM unnest(p_tokens, p_nexts) WITH ORDINALITY AS x(tok, nxt, i)
    ),
    l AS MATERIALIZED (
      SELECT t.id AS t_id, t.token AS t_token, t.revoked AS t_revoked,
             s.id AS s_id, s.user_id AS s_user_id, s.created_at AS s_created_at,
             s.refreshed_at AS s_refreshed_at, s.updated_at AS s_updated_at,
             s.not_after AS s_not_after, s.aal AS s_aal,
             (u.banned_until IS NOT NULL AND u.banned_until > now()) OR u.deleted_at IS NOT NULL AS u_gone
        FROM auth.refresh_tokens t
        JOIN auth.sessions s ON s.id = t.session_id
        JOIN auth.users u ON u.id = s.user_id
       WHERE t.token = ANY (p_tokens)
       ORDER BY t.token
         FOR UPDATE OF t
    ),
    c AS (
      SELECT g.i, g.nxt, l.*,
             count(*) OVER (PARTITION BY g.tok) AS per_token,
             count(*) OVER (PARTITION BY l.s_id) AS per_session
        FROM g JOIN l ON l.t_token = g.tok
    ),
    f AS MATERIALIZED (
      SELECT c.* FROM c
       WHERE p_rotate AND c.per_token = 1 AND c.per_session = 1 AND NOT c.t_revoked AND NOT c.u_gone
         AND NOT (p_timebox > 0 AND extract(epoch FROM now() - c.s_created_at) > p_timebox)
         AND NOT (p_inactivity > 0 AND extract(epoch FROM (now() AT TIME ZONE 'utc')
                                               - coalesce(c.s_refreshed_at, c.s_updated_at AT TIME ZONE 'utc')) > p_inactivity)
         AND NOT (c.s_not_after IS NOT NULL AND c.s_not_after < now())
    ),
    revoked AS (
      UPDATE auth.refresh_tokens x SET revoked = true, updated_at = now() FROM f WHERE x.id = f.t_id
    ),
    touched AS (
      UPDATE auth.sessions x SET refreshed_at = now() AT TIME ZONE 'utc', updated_at = now() FROM f WHERE x.id = f.s_id
    ),
    added AS (
      INSERT INTO auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
      SELECT '00000000-0000-0000-0000-000000000000'::uuid, f.nxt, f.s_user_id::text, false, now(), now(), f.t_token, f.s_id
        FROM f
    )
    SELECT f.i, f.s_id, f.s_user_id, coalesce(f.s_aal::text, 'aal1') AS aal, f.nxt,
           coalesce((SELECT jsonb_agg(jsonb_build_object('method', a.authentication_method,
                                                        'timestamp', extract(epoch FROM a.created_at)::bigint)
                                     ORDER BY a.created_at DESC)
                       FROM auth.mfa_amr_claims a WHERE a.session_id = f.s_id), '[]'::jsonb) AS amr,
           fluxbase.auth_user_json(f.s_user_id) AS user_json
      FROM f
  LOOP
    ord := rec.i;
    outcome := 'ok';
    session_id := rec.s_id;
    user_id := rec.s_user_id;
    aal := rec.aal;
    amr := rec.amr;
    refresh_token := rec.nxt;
    user_json := rec.user_json;
    RETURN NEXT;
    done := done || rec.i;
  END LOOP;

  FOR i IN 1 .. coalesce(array_length(p_tokens, 1), 0) LOOP
    CONTINUE WHEN i = ANY (done);
    RETURN QUERY
      SELECT i, r.outcome, r.session_id, r.user_id, r.aal, r.amr, r.refresh_token, r.user_json
        FROM fluxbase.auth_refresh(p_tokens[i], p_nexts[i], p_rotate, p_reuse_interval, p_timebox, p_inactivity) r;
  END LOOP;
END
$$;

REVOKE ALL ON FUNCTION fluxbase.auth_refresh_many(text[], text[], boolean, double precision, double precision, double precision) FROM PUBLIC;
