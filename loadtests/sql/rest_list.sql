-- GET /rest/v1/items?select=id,name,price,categories(name)&price=lt.100&limit=20
\set u random(1, 100)
BEGIN;
SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{"role":"authenticated","sub":"00000000-0000-0000-0000-' || lpad(:u::text, 12, '0') || '"}', true);
SELECT i.id, i.name, i.price, json_build_object('name', c.name) AS categories
  FROM public.items i LEFT JOIN public.categories c ON c.id = i.category_id
 WHERE i.price < 100 LIMIT 20;
COMMIT;
