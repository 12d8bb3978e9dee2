-- 0202_auth_rate_limits.sql
--
-- Owns: fluxbase.auth_rate_limits, the auth server's rate-limit counters when
-- `[auth] rate_limit_store = "database"` (the default), so that several
-- Fluxbase instances on one database share them (src/auth/shared_limits.rs).
--
-- One row per (action, key): a fixed window that started at window_start
-- and has counted `count` calls. UNLOGGED: counters are not worth WAL or an
-- fsync per sign-in, and losing them in a crash only restarts the windows.
-- Rows whose window is long over are swept by the server now and then.

CREATE UNLOGGED TABLE fluxbase.auth_rate_limits (
  action        text        NOT NULL,
  key           text        NOT NULL,
  window_start  timestamptz NOT NULL,
  count         integer     NOT NULL,
  CONSTRAINT auth_rate_limits_pkey PRIMARY KEY (action, key)
);
CREATE INDEX auth_rate_limits_window_start_idx ON fluxbase.auth_rate_limits (window_start);
REVOKE ALL ON fluxbase.auth_rate_limits FROM PUBLIC;
