// Shared setup for the JS suite: the server URL and keys come from the Rust
// harness through environment variables (see tests/js.rs).
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';

export const url = process.env.FLUXBASE_URL;
export const anonKey = process.env.FLUXBASE_ANON_KEY;
export const serviceKey = process.env.FLUXBASE_SERVICE_KEY;
export const dbUrl = process.env.FLUXBASE_DB_URL;

if (!url || !anonKey || !serviceKey) {
  throw new Error('run the JS suite through the Rust harness: cargo test --test integration js');
}

/** A supabase-js client as an app would create it (Node 20 needs `ws` for realtime). */
export function client(key = anonKey) {
  return createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket },
  });
}
