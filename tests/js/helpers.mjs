// Shared setup for the JS suite: the server URL and keys come from the Rust
// harness through environment variables (see tests/js.rs).
import crypto from 'node:crypto';
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

/** An HS256 access token for `sub`, signed with the server's secret. */
export function userToken(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, role: 'authenticated', aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac('sha256', process.env.FLUXBASE_JWT_SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
