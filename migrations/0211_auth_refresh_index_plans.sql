-- 0211_auth_refresh_index_plans.sql
--
-- Owns: the planner settings of fluxbase.auth_refresh (0204) and
-- fluxbase.auth_refresh_many (0207). A later CREATE OR REPLACE of either
-- function must repeat `SET enable_seqscan = off` (tests/auth.rs checks it).
--
-- Every query in these functions finds its rows by key: a token by its
-- text, a session, user or token by id, a session's claims and tokens by
-- session id. PL/pgSQL keeps each query's plan for the life of the
-- connection, and a plan made while the tables were nearly empty (a new
-- project, the first seconds of a burst) reads whole tables: sequential
-- scans are the cheaper choice for a few rows. Such a plan stayed until the
-- next automatic ANALYZE, while the tables grew by thousands of rows a
-- second: a fresh server's first 60,000 grants read 52 million token rows
-- (`loadtests refresh`, 128 sessions, about 1,300 grants/s against 5,000/s
-- once analyzed). With sequential scans off inside the two functions their
-- plans use the indexes whatever the statistics say; from a fresh server
-- the same run read none (4,783 grants/s).

ALTER FUNCTION fluxbase.auth_refresh(text, text, boolean, double precision, double precision, double precision)
  SET enable_seqscan = off;
ALTER FUNCTION fluxbase.auth_refresh_many(text[], text[], boolean, double precision, double precision, double precision)
  SET enable_seqscan = off;
