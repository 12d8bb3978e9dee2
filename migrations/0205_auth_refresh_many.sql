-- 0205_auth_refresh_many.sql
--
-- Owns: fluxbase.auth_refresh_many(), several refresh-token grants in one
-- statement and so in one transaction (src/auth/refresh_batch.rs coalesces
-- the grants that arrive while another batch is in flight).
--
-- Each grant is exactly one call of fluxbase.auth_refresh() (0201, 0204),
-- in array order, so each gets the outcome it would get alone after the
-- grants before it: two copies of one token in a batch behave as two tabs
-- racing. Rows come back tagged with the grant's 1-based position (`ord`).
-- Measured with pgbench on two cores: about 2,400 grants/s one per
-- transaction, about 5,300/s sixteen per transaction; most of a lone
-- grant's cost is the transaction around it, not its work.

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
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_tokens, 1), 0) LOOP
    RETURN QUERY
      SELECT i, r.outcome, r.session_id, r.user_id, r.aal, r.amr, r.refresh_token, r.user_json
        FROM fluxbase.auth_refresh(p_tokens[i], p_nexts[i], p_rotate, p_reuse_interval, p_timebox, p_inactivity) r;
  END LOOP;
END
$$;

REVOKE ALL ON FUNCTION fluxbase.auth_refresh_many(text[], text[], boolean, double precision, double precision, double precision) FROM PUBLIC;
