-- POST /rest/v1/items with Prefer: resolution=merge-duplicates on an existing row of the user
\set u random(1, 100)
\set k random(1, :nitems / 100 - 1)
\set id :k * 100 + :u - 1
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true);
INSERT INTO public.items (id, owner, category_id, name, price)
  VALUES (:id, ('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, 2, 'upserted', 7)
  ON CONFLICT (id) DO UPDATE SET category_id = excluded.category_id, name = excluded.name, price = excluded.price;
COMMIT;
