// Driven by tests/sdk.rs (sdk_resumes_across_kill_9), not by `node --test`:
// subscribes, writes numbered rows straight into PostgreSQL while the Rust
// side kills the server with SIGKILL and starts it again, and checks that the
// subscription received every row exactly once and in order.
// Protocol on stdout: `live`, then `received <n>` every 10 changes, then `ok` (exit 0) or a failure (exit 1).
import crypto from 'node:crypto';
import pg from 'pg';
import WebSocket from 'ws';
import { createClient, comparePositions } from '../dist/index.js';

const { FLUXBASE_URL: url, FLUXBASE_SERVICE_KEY: serviceKey, FLUXBASE_DB_URL: dbUrl } = process.env;
const TOTAL = Number(process.env.SDK_RESTART_TOTAL ?? 200);
const table = `sdk_restart_${crypto.randomBytes(4).toString('hex')}`;

const db = new pg.Client({ connectionString: dbUrl });
await db.connect();
await db.query(`create table public.${table} (n bigint primary key)`);

const client = createClient(url, serviceKey, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket } });
const got = [];
const statuses = [];
let live;
const isLive = new Promise((r) => (live = r));
const sub = client.subscribeChanges({
  table,
  backoff: { initialMs: 100, maxMs: 1000 },
  onChange: (c) => {
    got.push(c);
    if (got.length % 10 === 0) console.log(`received ${got.length}`);
  },
  onStatus: (s) => {
    statuses.push(s);
    if (s === 'live') live();
  },
  onError: (e) => console.log(`onError: ${e.name}: ${e.message}`),
});
await isLive;
console.log('live');

// The writer: one transaction per row, straight into PostgreSQL (Fluxbase is not in the write path).
for (let n = 1; n <= TOTAL; n++) {
  await db.query(`insert into public.${table} (n) values ($1)`, [n]);
  await new Promise((r) => setTimeout(r, 15));
}
const deadline = Date.now() + 120_000;
while (got.length < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
await new Promise((r) => setTimeout(r, 500)); // anything extra would show up now
sub.unsubscribe();
await db.end();

const ns = got.map((c) => c.record.n);
const want = Array.from({ length: TOTAL }, (_, i) => i + 1);
const problems = [];
if (JSON.stringify(ns) !== JSON.stringify(want)) problems.push(`received ${ns.length} rows, not 1..${TOTAL} once each in order: ${JSON.stringify(ns)}`);
for (let i = 1; i < got.length; i++) {
  if (comparePositions(got[i - 1].position, got[i].position) !== -1) problems.push(`positions not increasing at ${i}`);
}
if (!statuses.includes('reconnecting')) problems.push('the subscription never reconnected: was the server killed?');
if (problems.length) {
  console.log(`FAILED: ${problems.join('; ')} (statuses: ${statuses.join(',')})`);
  process.exit(1);
}
console.log(`ok: ${TOTAL} changes exactly once, in order, across the restart (statuses: ${statuses.join(',')})`);
process.exit(0);
