-- Fluxbase replication: the managed publication and what goes into it.
--
-- One publication (default name `fluxbase`) carries the changes Fluxbase
-- streams into its event log. In mode 'all' every table with a primary key in
-- the configured schemas is published; in mode 'listed' only tables named in
-- fluxbase.published_tables (add them with fluxbase.publish('schema.table')).
-- Published tables are set to REPLICA IDENTITY FULL so old rows (and RLS on
-- deletes) are available. Tables that cannot be published safely (no primary
-- key, REPLICA IDENTITY NOTHING) are refused and listed with the fix in
-- fluxbase.publication_refusals. An event trigger keeps the publication
-- current as tables are created or altered; it never fails the user's DDL.

create table if not exists fluxbase.replication_settings (
    id boolean primary key default true check (id),
    publication text not null default 'fluxbase',
    mode text not null default 'all' check (mode in ('all', 'listed')),
    schemas text[] not null default '{public,storage}'
);
insert into fluxbase.replication_settings default values on conflict do nothing;

create table if not exists fluxbase.published_tables (
    schema_name text not null,
    table_name text not null,
    primary key (schema_name, table_name)
);

create table if not exists fluxbase.publication_refusals (
    schema_name text not null,
    table_name text not null,
    reason text not null,
    seen_at timestamptz not null default now(),
    primary key (schema_name, table_name)
);

create or replace function fluxbase.sync_publication() returns void
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    s fluxbase.replication_settings;
    r record;
    wanted boolean;
    reason text;
begin
    -- ALTER TABLE below fires the event trigger again: do nothing then.
    if current_setting('fluxbase.syncing', true) = 'on' then
        return;
    end if;
    perform set_config('fluxbase.syncing', 'on', true);
    select * into s from fluxbase.replication_settings;
    if not found then
        perform set_config('fluxbase.syncing', 'off', true);
        return;
    end if;
    if not exists (select 1 from pg_publication where pubname = s.publication) then
        execute format('create publication %I', s.publication);
    end if;
    for r in
        select c.oid, n.nspname, c.relname, c.relreplident,
               exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary) as has_pk,
               exists (select 1 from pg_publication_rel pr join pg_publication p on p.oid = pr.prpubid
                        where p.pubname = s.publication and pr.prrelid = c.oid) as published
          from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'p')
           and not c.relispartition
           and n.nspname = any (s.schemas)
    loop
        wanted := s.mode = 'all'
            or exists (select 1 from fluxbase.published_tables t
                        where t.schema_name = r.nspname and t.table_name = r.relname);
        reason := case
            when not r.has_pk then
                format('table %I.%I has no primary key: add one (ALTER TABLE %I.%I ADD PRIMARY KEY (...)) to stream its changes',
                       r.nspname, r.relname, r.nspname, r.relname)
            when r.relreplident = 'n' then
                format('table %I.%I has REPLICA IDENTITY NOTHING: set it to FULL (ALTER TABLE %I.%I REPLICA IDENTITY FULL) to stream its changes',
                       r.nspname, r.relname, r.nspname, r.relname)
        end;
        if wanted and reason is null then
            if r.relreplident <> 'f' then
                execute format('alter table %I.%I replica identity full', r.nspname, r.relname);
            end if;
            if not r.published then
                execute format('alter publication %I add table %I.%I', s.publication, r.nspname, r.relname);
            end if;
            delete from fluxbase.publication_refusals where schema_name = r.nspname and table_name = r.relname;
        else
            if r.published then
                execute format('alter publication %I drop table %I.%I', s.publication, r.nspname, r.relname);
            end if;
            if wanted then
                insert into fluxbase.publication_refusals (schema_name, table_name, reason)
                values (r.nspname, r.relname, reason)
                on conflict (schema_name, table_name) do update set reason = excluded.reason, seen_at = now();
                raise warning 'fluxbase: %', reason;
            else
                delete from fluxbase.publication_refusals where schema_name = r.nspname and table_name = r.relname;
            end if;
        end if;
    end loop;
    delete from fluxbase.publication_refusals f
     where not exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where n.nspname = f.schema_name and c.relname = f.table_name);
    perform set_config('fluxbase.syncing', 'off', true);
end;
$$;

-- Opt-in mode: publish one table (also records it for mode 'listed').
create or replace function fluxbase.publish(relation text) returns void
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    rel regclass := relation::regclass;
    sch text;
    tab text;
begin
    select n.nspname, c.relname into sch, tab
      from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = rel;
    insert into fluxbase.published_tables values (sch, tab) on conflict do nothing;
    perform fluxbase.sync_publication();
end;
$$;

create or replace function fluxbase.on_ddl_sync_publication() returns event_trigger
language plpgsql security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform fluxbase.sync_publication();
exception when others then
    -- Never fail the user's DDL because of the publication.
    raise warning 'fluxbase: could not update the publication: %', sqlerrm;
end;
$$;

drop event trigger if exists fluxbase_sync_publication;
create event trigger fluxbase_sync_publication on ddl_command_end
    when tag in ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE SCHEMA')
    execute function fluxbase.on_ddl_sync_publication();

select fluxbase.sync_publication();
