-- GET /rest/v1/items?id=eq.<id> as a user JWT, PostgREST-style: one transaction.
\set u random(1, 100)
\set k random(1, :nitems / 100 - 1)
\set id :k * 100 + :u - 1
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true);
SELECT * FROM public.items WHERE id = :id;
COMMIT;
