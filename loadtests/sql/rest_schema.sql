-- Schema and data for the REST scenario (P6-P8). :NITEMS is replaced by the runner.
-- 100 users own the items round-robin: item g belongs to user (g % 100) + 1, whose
-- uuid is 00000000-0000-0000-0000-<user, 12 digits>. RLS: owner = auth.uid().
create table public.categories (id int primary key, name text not null);
create table public.items (
  id bigint primary key,
  owner uuid not null,
  category_id int references public.categories (id),
  name text not null,
  price int not null default 0
);
create index items_owner on public.items (owner);
alter table public.categories enable row level security;
alter table public.items enable row level security;
create policy categories_read on public.categories for select to authenticated using (true);
create policy items_owner on public.items for all to authenticated
  using (owner = auth.uid()) with check (owner = auth.uid());
grant select on public.categories to authenticated;
grant select, insert, update on public.items to authenticated;
insert into public.categories select g, 'category ' || g from generate_series(1, 20) g;
insert into public.items
  select g, ('00000000-0000-0000-0000-' || lpad(((g % 100) + 1)::text, 12, '0'))::uuid, (g % 20) + 1, 'item ' || g, g % 1000
  from generate_series(1, :NITEMS) g;
create function public.add_them(a int, b int) returns int language sql immutable as $$ select a + b $$;
grant execute on function public.add_them(int, int) to authenticated;
analyze public.items;
