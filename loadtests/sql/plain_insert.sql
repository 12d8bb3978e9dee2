-- The machine's reference insert: one row into a bare table (no RLS, no foreign key,
-- no request settings), as docs/performance.md's "physical limits" table measures it
-- ("single-row INSERT, synchronous_commit=on, 16 clients: about 20,800 tps").
-- The runner creates and drops the table (loadtests/run, rest_machine_reference), in
-- a schema Fluxbase does not publish, so the figure is PostgreSQL's alone.
insert into fluxbase_bench.plain (v, t) values (1, 'new item');
