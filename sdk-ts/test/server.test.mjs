// @fluxbase/client against a real Fluxbase server and PostgreSQL, started by
// the Rust harness (tests/sdk.rs passes the URL, keys and a superuser DB URL).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import pg from 'pg';
import WebSocket from 'ws';
import { createClient, memoryStorage, WaitTimeoutError, comparePositions } from '../dist/index.js';

const url = process.env.FLUXBASE_URL;
const anonKey = process.env.FLUXBASE_ANON_KEY;
const serviceKey = process.env.FLUXBASE_SERVICE_KEY;
const secret = process.env.FLUXBASE_JWT_SECRET;
const dbUrl = process.env.FLUXBASE_DB_URL;
if (!url || !anonKey || !serviceKey || !secret || !dbUrl) {
  throw new Error('run through the Rust harness: cargo test --test integration sdk');
}

const suffix = crypto.randomBytes(4).toString('hex');
const T = `sdk_items_${suffix}`;
const R = `sdk_notes_${suffix}`;
const db = new pg.Client({ connectionString: dbUrl });
const subs = [];

function client(key = anonKey, options = {}) {
  return createClient(url, key, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket }, ...options });
}
function userToken(sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, role: 'authenticated', aud: 'authenticated', exp: Math.floor(Date.now() / 1000) + 3600 });
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
/** Subscribes and resolves once the server has accepted the stream. */
async function subscribe(c, opts) {
  let live;
  const isLive = new Promise((r) => (live = r));
  const sub = c.subscribeChanges({
    ...opts,
    onStatus: (s, e) => {
      if (s === 'live') live();
      opts.onStatus?.(s, e);
    },
  });
  subs.push(sub);
  await withTimeout(isLive, 10000, 'the stream did not go live');
  return sub;
}
function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms))]);
}
/** Collects changes; `take(n)` waits for n of them. */
function collector() {
  const items = [];
  return {
    items,
    onChange: (c) => {
      items.push(c);
    },
    async take(n, ms = 15000) {
      const deadline = Date.now() + ms;
      while (items.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.ok(items.length >= n, `expected ${n} changes, got ${items.length}: ${JSON.stringify(items.map((c) => c.position))}`);
      return items.slice(0, n);
    },
  };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function assertIncreasing(changes) {
  for (let i = 1; i < changes.length; i++) {
    assert.equal(comparePositions(changes[i - 1].position, changes[i].position), -1, `positions increase at ${i}`);
  }
}

before(async () => {
  await db.connect();
  await db.query(`create table public.${T} (id bigint primary key, title text, n int default 0)`);
  await db.query(`grant select on public.${T} to anon, authenticated`);
  await db.query(`create table public.${R} (id bigint primary key, owner uuid not null, body text);
    alter table public.${R} enable row level security;
    create policy own on public.${R} for select using (auth.uid() = owner);
    grant select on public.${R} to authenticated;`);
});

after(async () => {
  for (const s of subs) s.unsubscribe();
  await db.end();
});

test('live changes: insert, update, delete with their rows and positions', async () => {
  const c = client();
  const got = collector();
  const sub = await subscribe(c, { table: T, onChange: got.onChange });
  await db.query(`insert into public.${T} (id, title) values (1, 'one')`);
  await db.query(`update public.${T} set n = 5 where id = 1`);
  await db.query(`delete from public.${T} where id = 1`);
  const [ins, upd, del] = await got.take(3);
  assert.equal(ins.type, 'INSERT');
  assert.equal(ins.schema, 'public');
  assert.equal(ins.table, T);
  assert.deepEqual(ins.record, { id: 1, title: 'one', n: 0 });
  assert.ok(!Number.isNaN(Date.parse(ins.commit_timestamp)));
  assert.equal(upd.type, 'UPDATE');
  assert.deepEqual(upd.record, { id: 1, title: 'one', n: 5 });
  assert.deepEqual(upd.old_record, { id: 1, title: 'one', n: 0 });
  assert.equal(del.type, 'DELETE');
  assert.equal(del.old_record.id, 1);
  assertIncreasing([ins, upd, del]);
  assert.equal(sub.position(), del.position);
  sub.unsubscribe();
});

test('filter: only matching rows (on the old row for deletes)', async () => {
  const c = client(serviceKey);
  const got = collector();
  const sub = await subscribe(c, { table: T, filter: 'title=eq.keep', onChange: got.onChange });
  await db.query(`insert into public.${T} (id, title) values (10, 'keep'), (11, 'drop'), (12, 'keep')`);
  await db.query(`delete from public.${T} where id in (10, 11)`);
  const items = await got.take(3);
  assert.deepEqual(items.map((c) => [c.type, c.record?.id ?? c.old_record.id]), [['INSERT', 10], ['INSERT', 12], ['DELETE', 10]]);
  await sleep(300);
  assert.equal(got.items.length, 3, 'nothing else arrives');
  sub.unsubscribe();
});

test('resume after unsubscribe: a new subscription with the same storage gets exactly the missed changes', async () => {
  const c = client();
  const storage = memoryStorage();
  const first = collector();
  const filter = 'id=gte.100';
  const sub1 = await subscribe(c, {
    table: T,
    filter,
    storage,
    // Asynchronous processing: the position is saved after the promise resolves.
    onChange: async (ch) => {
      await sleep(5);
      first.onChange(ch);
    },
  });
  await db.query(`insert into public.${T} (id, title) values (100, 'a'), (101, 'b')`);
  await first.take(2);
  await sleep(50);
  sub1.unsubscribe();
  const key = `public.${T}?${filter}`;
  assert.equal(storage.get(key), first.items[1].position, 'stored under schema.table?filter');

  // Missed while nobody listens: several transactions, an update and a delete.
  await db.query(`insert into public.${T} (id, title) values (102, 'c')`);
  await db.query(`begin; insert into public.${T} (id, title) values (103, 'd'), (104, 'e'); update public.${T} set n = 1 where id = 100; commit`);
  await db.query(`delete from public.${T} where id = 101`);

  const second = collector();
  await subscribe(c, { table: T, filter, storage, onChange: second.onChange });
  await db.query(`insert into public.${T} (id, title) values (105, 'live')`);
  const items = await second.take(6);
  assert.deepEqual(
    items.map((ch) => [ch.type, ch.record?.id ?? ch.old_record.id]),
    [['INSERT', 102], ['INSERT', 103], ['INSERT', 104], ['UPDATE', 100], ['DELETE', 101], ['INSERT', 105]],
  );
  assertIncreasing([...first.items, ...items]);
  await sleep(300);
  assert.equal(second.items.length, 6, 'none twice');
});

test('resume across a dropped connection: the stream is cut mid-way and picks up with Last-Event-ID', async () => {
  // A fetch that cuts the first stream response after 3 change events (mid-chunk if need be).
  const streamRequests = [];
  let cut = false;
  const cuttingFetch = async (input, init = {}) => {
    const res = await fetch(input, init);
    if (!String(input).includes('/changes/v1/stream')) return res;
    streamRequests.push(new Headers(init.headers).get('last-event-id'));
    if (cut) return res;
    cut = true;
    let seen = 0;
    let dead = false;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    const body = new ReadableStream({
      async pull(ctrl) {
        // Error only once what was enqueued has been read (error() drops queued chunks).
        if (dead) return ctrl.error(new TypeError('network connection lost'));
        const { value, done } = await reader.read();
        if (done) return ctrl.close();
        const text = decoder.decode(value, { stream: true });
        let out = '';
        for (const part of text.split(/(?<=\n\n)/)) {
          out += part;
          if (/^event: ?change$/m.test(part) && part.endsWith('\n\n') && ++seen === 3) {
            dead = true;
            reader.cancel().catch(() => {});
            break;
          }
        }
        ctrl.enqueue(encoder.encode(out));
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const c = client();
  const got = collector();
  const statuses = [];
  await subscribe(c, {
    table: T,
    filter: 'id=gte.200',
    fetch: cuttingFetch,
    backoff: { initialMs: 50 },
    onChange: got.onChange,
    onStatus: (s) => statuses.push(s),
  });
  const ids = Array.from({ length: 20 }, (_, i) => 200 + i);
  for (const id of ids) await db.query(`insert into public.${T} (id, title) values ($1, 'x')`, [id]);
  const items = await got.take(ids.length);
  assert.deepEqual(items.map((ch) => ch.record.id), ids, 'all, in order');
  assertIncreasing(items);
  assert.ok(streamRequests.length >= 2, 'reconnected');
  assert.equal(streamRequests[1], items[2].position, 'resumed after the third change');
  assert.ok(statuses.includes('reconnecting'));
  await sleep(300);
  assert.equal(got.items.length, ids.length, 'none twice');
});

test('RLS: a user JWT sees only its own rows, deletes included', async () => {
  const alice = crypto.randomUUID();
  const bob = crypto.randomUUID();
  const tokenA = userToken(alice);
  // Two ways to be a user: an Authorization header, or the accessToken option.
  const ca = client(anonKey, { global: { headers: { Authorization: `Bearer ${tokenA}` } } });
  const cb = client(anonKey, { accessToken: async () => userToken(bob), realtime: { transport: WebSocket } });
  const anon = client(anonKey);
  const gotA = collector();
  const gotB = collector();
  const gotAnon = collector();
  await subscribe(ca, { table: R, onChange: gotA.onChange });
  await subscribe(cb, { table: R, onChange: gotB.onChange });
  await subscribe(anon, { table: R, onChange: gotAnon.onChange });
  await db.query(`insert into public.${R} values (1, $1, 'alice 1'), (2, $2, 'bob 1'), (3, $1, 'alice 2')`, [alice, bob]);
  await db.query(`delete from public.${R} where id in (1, 2)`);
  const a = await gotA.take(3);
  const b = await gotB.take(2);
  assert.deepEqual(a.map((ch) => [ch.type, ch.record?.id ?? ch.old_record.id]), [['INSERT', 1], ['INSERT', 3], ['DELETE', 1]]);
  assert.deepEqual(b.map((ch) => [ch.type, ch.record?.id ?? ch.old_record.id]), [['INSERT', 2], ['DELETE', 2]]);
  await sleep(500);
  assert.equal(gotA.items.length, 3, "alice never sees bob's rows");
  assert.equal(gotB.items.length, 2, "bob never sees alice's rows");
  assert.equal(gotAnon.items.length, 0, 'anon sees nothing');
});

test('waitFor: resolves once the log has passed a write, times out otherwise', async () => {
  const c = client();
  const { rows } = await db.query(`with w as (insert into public.${T} (id, title) values (300, 'w') returning 1) select pg_current_wal_lsn()::text as lsn from w`);
  const target = rows[0].lsn;
  const res = await c.waitFor(target, { timeoutMs: 15000 });
  assert.match(res.lsn, /^[0-9A-F]+\/[0-9A-F]+$/);
  assert.ok(comparePositions(res.lsn, target) >= 0, `${res.lsn} >= ${target}`);
  const t0 = Date.now();
  await assert.rejects(c.waitFor('FFFFFFFF/0', { timeoutMs: 300 }), (e) => e instanceof WaitTimeoutError && e.status === 408);
  assert.ok(Date.now() - t0 < 5000);
});
