-- The machine's reference read: a SELECT by primary key from a bare table of
-- 100,000 rows shaped like pgbench's accounts (no RLS, no request settings), as
-- `pgbench -S` runs it and docs/performance.md's "physical limits" table measures it
-- ("pgbench -S, SELECT by primary key, prepared, 8-32 clients: about 51,000 tps").
-- The runner creates and drops the table (loadtests/run, rest_machine_reference).
\set aid random(1, 100000)
select abalance from fluxbase_bench.accounts where aid = :aid;
