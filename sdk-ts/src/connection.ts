/** What the SDK's own requests need: where the server is, the key, how to fetch and who the caller is. */

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface FluxbaseConnection {
  /** The project URL (as given to `createClient`), without a trailing slash. */
  url: string;
  /** The anon or service_role key: sent as `apikey`. */
  key: string;
  /** The fetch to use (supabase-js's `global.fetch` option, else the global one). */
  fetch: FetchLike;
  /** The `Authorization` header value: the session's access token, else the key. */
  authorization(): Promise<string>;
}

/** A connection from a URL and key alone (no session): the key is the bearer token. */
export function connection(url: string, key: string, options: { fetch?: FetchLike; accessToken?: () => Promise<string | null> } = {}): FluxbaseConnection {
  const f = options.fetch;
  return {
    url: url.replace(/\/+$/, ''),
    key,
    fetch: f ?? ((input, init) => fetch(input, init)),
    authorization: async () => `Bearer ${(options.accessToken && (await options.accessToken())) || key}`,
  };
}

/** The headers every request to `/changes/v1` carries. */
export async function authHeaders(conn: FluxbaseConnection): Promise<Record<string, string>> {
  return { apikey: conn.key, authorization: await conn.authorization() };
}
