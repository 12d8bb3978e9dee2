-- POST /rest/v1/rpc/add_them {"a": 1, "b": 2}
\set u random(1, 100)
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true);
SELECT public.add_them(1, 2);
COMMIT;
