-- POST /rest/v1/items (one row, Prefer: return=minimal)
\set u random(1, 100)
\set id random(1000000000, 9000000000000000)
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true);
INSERT INTO public.items (id, owner, category_id, name, price)
  VALUES (:id, ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, 1, 'new item', 5);
COMMIT;
