/** `createClient`: supabase-js's client with Fluxbase's additions. */

import { createClient as createSupabaseClient, type SupabaseClient, type SupabaseClientOptions } from '@supabase/supabase-js';

import { subscribeChanges as subscribe, type ChangeSubscription, type Row, type SubscribeChangesOptions } from './changes.js';
import type { FetchLike, FluxbaseConnection } from './connection.js';
import { compareLsns } from './position.js';
import { memoryStorage, type PositionStorage } from './storage.js';
import { waitFor as wait, type WaitForOptions } from './wait.js';

/** What `createClient` adds to the supabase-js client. */
export interface FluxbaseExtensions {
  /** Streams a table's changes, resuming after disconnects with no gap and no duplicate. */
  subscribeChanges<T extends Row = Row>(options: SubscribeChangesOptions<T>): ChangeSubscription;
  /**
   * Resolves once the change log has passed `lsn` (a write's `X-Fluxbase-Lsn`);
   * without `lsn`, the highest `X-Fluxbase-Lsn` this client has received (resolves
   * at once with `{lsn: null}` if none). Rejects with `WaitTimeoutError` after `timeoutMs`.
   */
  waitFor(lsn?: string | null, options?: WaitForOptions): Promise<{ lsn: string | null }>;
  /** The highest `X-Fluxbase-Lsn` response header this client has seen (its latest write), or null. */
  lastLsn(): string | null;
  /** The connection the additions use (URL, key, fetch, the caller's `Authorization`). */
  readonly fluxbase: FluxbaseConnection;
}

/** supabase-js's options, plus Fluxbase's. */
export type FluxbaseClientOptions<SchemaName> = SupabaseClientOptions<SchemaName> & {
  fluxbase?: {
    /** Default storage of `subscribeChanges` positions for this client (default: in memory). */
    storage?: PositionStorage;
  };
};

type Db<Database> = Omit<Database, '__InternalSupabase'>;

/** A supabase-js client with {@link FluxbaseExtensions}. */
export type FluxbaseClient<
  Database = any,
  SchemaNameOrClientOptions extends (string & keyof Db<Database>) | { PostgrestVersion: string } = 'public' extends keyof Db<Database>
    ? 'public'
    : string & keyof Db<Database>,
  SchemaName extends string & keyof Db<Database> = SchemaNameOrClientOptions extends string & keyof Db<Database>
    ? SchemaNameOrClientOptions
    : 'public' extends keyof Db<Database>
      ? 'public'
      : string & keyof Omit<Db<Database>, '__InternalSupabase'>,
> = SupabaseClient<Database, SchemaNameOrClientOptions, SchemaName> & FluxbaseExtensions;

function headerValue(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * Creates a supabase-js client (same arguments, same behaviour) extended with
 * `subscribeChanges`, `waitFor` and `lastLsn`.
 *
 * The additions authenticate as supabase-js does: an `Authorization` header in
 * `global.headers` wins, then the `accessToken` option, then the signed-in
 * session's access token, then the key.
 */
export function createClient<
  Database = any,
  SchemaNameOrClientOptions extends (string & keyof Db<Database>) | { PostgrestVersion: string } = 'public' extends keyof Db<Database>
    ? 'public'
    : string & keyof Db<Database>,
  SchemaName extends string & keyof Db<Database> = SchemaNameOrClientOptions extends string & keyof Db<Database>
    ? SchemaNameOrClientOptions
    : 'public' extends keyof Db<Database>
      ? 'public'
      : string & keyof Omit<Db<Database>, '__InternalSupabase'>,
>(
  supabaseUrl: string,
  supabaseKey: string,
  options?: FluxbaseClientOptions<SchemaName>,
): FluxbaseClient<Database, SchemaNameOrClientOptions, SchemaName> {
  const { fluxbase: fluxOptions, ...sbOptions } = options ?? {};
  const userFetch = sbOptions.global?.fetch as FetchLike | undefined;
  const baseFetch: FetchLike = userFetch ?? ((input, init) => fetch(input, init));
  let lastLsn: string | null = null;
  // Every supabase-js request goes through this: it remembers the latest write's LSN.
  const capturingFetch: FetchLike = async (input, init) => {
    const res = await baseFetch(input, init);
    const lsn = res.headers.get('x-fluxbase-lsn');
    if (lsn && (lastLsn === null || (compareLsns(lsn, lastLsn) ?? 0) > 0)) lastLsn = lsn;
    return res;
  };
  const client = createSupabaseClient<Database, SchemaNameOrClientOptions, SchemaName>(supabaseUrl, supabaseKey, {
    ...sbOptions,
    global: { ...sbOptions.global, fetch: capturingFetch as typeof fetch },
  } as SupabaseClientOptions<SchemaName>);

  const explicitAuth = headerValue(sbOptions.global?.headers, 'authorization');
  const conn: FluxbaseConnection = {
    url: supabaseUrl.replace(/\/+$/, ''),
    key: supabaseKey,
    fetch: baseFetch,
    authorization: async () => {
      if (explicitAuth) return explicitAuth;
      if (sbOptions.accessToken) {
        const t = await sbOptions.accessToken();
        if (t) return `Bearer ${t}`;
      } else {
        const { data } = await client.auth.getSession();
        if (data.session?.access_token) return `Bearer ${data.session.access_token}`;
      }
      return `Bearer ${supabaseKey}`;
    },
  };
  const storage = fluxOptions?.storage ?? memoryStorage();
  const extensions: FluxbaseExtensions = {
    subscribeChanges: (opts) => subscribe(conn, opts, storage),
    waitFor: async (lsn, opts) => {
      const target = lsn ?? lastLsn;
      if (target === null) return { lsn: null };
      return wait(conn, target, opts);
    },
    lastLsn: () => lastLsn,
    fluxbase: conn,
  };
  return Object.assign(client, extensions);
}
