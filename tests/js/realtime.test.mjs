// Realtime through the real supabase-js: postgres_changes (payloads, filters,
// RLS per user), broadcast and presence, on both protocol versions.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import pg from 'pg';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { url, anonKey, serviceKey, dbUrl, userToken } from './helpers.mjs';

const suffix = crypto.randomBytes(4).toString('hex');
const T = `rt_items_${suffix}`;
const N = `rt_notes_${suffix}`;
const db = new pg.Client({ connectionString: dbUrl });

function rtClient(vsn = '2.0.0', key = anonKey) {
  return createClient(url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket, vsn, heartbeatIntervalMs: 1000 },
  });
}
function subscribed(channel) {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') resolve();
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(status));
    });
  });
}
function collector() {
  const items = [];
  const waiters = [];
  return {
    push(x) {
      items.push(x);
      waiters.splice(0).forEach((w) => w());
    },
    async take(n, ms = 15000) {
      const deadline = Date.now() + ms;
      while (items.length < n && Date.now() < deadline) {
        await new Promise((r) => { waiters.push(r); setTimeout(r, 100); });
      }
      return items.slice(0, n);
    },
    items,
  };
}
const clients = [];

before(async () => {
  await db.connect();
  await db.query(`create table public.${T} (id bigint primary key, title text, done boolean default false, tags text[])`);
  await db.query(`create table public.${N} (id bigint primary key, owner uuid not null, body text);
    alter table public.${N} enable row level security;
    create policy own on public.${N} for select using (auth.uid() = owner);
    grant select on public.${N} to authenticated;`);
});

after(async () => {
  for (const c of clients) await c.removeAllChannels();
  await db.end();
});

for (const vsn of ['1.0.0', '2.0.0']) {
  test(`postgres_changes payloads (vsn ${vsn})`, async () => {
    const c = rtClient(vsn);
    clients.push(c);
    const got = collector();
    const ch = c.channel(`db-${vsn}-${suffix}`).on('postgres_changes', { event: '*', schema: 'public', table: T }, (p) => got.push(p));
    await subscribed(ch);
    const base = vsn === '1.0.0' ? 100 : 200;
    await db.query(`insert into public.${T} (id, title, tags) values ($1, 'a', '{x,y}')`, [base]);
    await db.query(`update public.${T} set done = true where id = $1`, [base]);
    await db.query(`delete from public.${T} where id = $1`, [base]);
    const [ins, upd, del] = await got.take(3);
    assert.equal(ins.eventType, 'INSERT');
    assert.equal(ins.schema, 'public');
    assert.equal(ins.table, T);
    assert.deepEqual(ins.new, { id: base, title: 'a', done: false, tags: ['x', 'y'] });
    assert.ok(!Number.isNaN(Date.parse(ins.commit_timestamp)));
    assert.equal(upd.eventType, 'UPDATE');
    assert.equal(upd.new.done, true);
    assert.equal(upd.old.done, false);
    assert.equal(del.eventType, 'DELETE');
    assert.equal(del.old.id, base);
  });
}

test('filters and event types route to the right bindings', async () => {
  const c = rtClient();
  clients.push(c);
  const inserts = collector();
  const onlyTwo = collector();
  const ch = c
    .channel(`filters-${suffix}`)
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: T }, (p) => inserts.push(p))
    .on('postgres_changes', { event: '*', schema: 'public', table: T, filter: 'id=eq.302' }, (p) => onlyTwo.push(p));
  await subscribed(ch);
  await db.query(`insert into public.${T} (id, title) values (301, 'one'), (302, 'two')`);
  await db.query(`update public.${T} set title = 'second' where id in (301, 302)`);
  const ins = await inserts.take(2);
  assert.deepEqual(ins.map((p) => p.new.id).sort(), [301, 302]);
  const two = await onlyTwo.take(2);
  assert.deepEqual(two.map((p) => [p.eventType, p.new.id]), [['INSERT', 302], ['UPDATE', 302]]);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(inserts.items.length, 2, 'no UPDATE reached the INSERT binding');
});

test('RLS: each user sees only their rows', async () => {
  const alice = crypto.randomUUID();
  const bob = crypto.randomUUID();
  const gotA = collector();
  const gotB = collector();
  const ca = rtClient();
  const cb = rtClient();
  clients.push(ca, cb);
  await ca.realtime.setAuth(userToken(alice));
  await cb.realtime.setAuth(userToken(bob));
  await subscribed(ca.channel(`rls-a-${suffix}`).on('postgres_changes', { event: '*', schema: 'public', table: N }, (p) => gotA.push(p)));
  await subscribed(cb.channel(`rls-b-${suffix}`).on('postgres_changes', { event: '*', schema: 'public', table: N }, (p) => gotB.push(p)));
  await db.query(`insert into public.${N} values (1, $1, 'alice note'), (2, $2, 'bob note')`, [alice, bob]);
  await db.query(`delete from public.${N} where id = 2`);
  const a = await gotA.take(1);
  const b = await gotB.take(2);
  assert.equal(a[0].new.body, 'alice note');
  assert.deepEqual(b.map((p) => p.eventType), ['INSERT', 'DELETE']);
  assert.equal(b[0].new.body, 'bob note');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(gotA.items.length, 1, 'alice never sees bob\'s rows or deletes');
});

for (const vsn of ['1.0.0', '2.0.0']) {
  test(`broadcast and presence between two clients (vsn ${vsn})`, async () => {
    const c1 = rtClient(vsn);
    const c2 = rtClient(vsn);
    clients.push(c1, c2);
    const room = `room-${vsn}-${suffix}`;
    const got = collector();
    const mine = collector();
    const ch1 = c1.channel(room, { config: { broadcast: { self: true, ack: true }, presence: { key: 'one' } } });
    ch1.on('broadcast', { event: 'cursor' }, (p) => mine.push(p));
    const ch2 = c2.channel(room, { config: { presence: { key: 'two' } } });
    const syncs = collector();
    ch2.on('broadcast', { event: 'cursor' }, (p) => got.push(p)).on('presence', { event: 'sync' }, () => syncs.push(ch2.presenceState()));
    await subscribed(ch1);
    await subscribed(ch2);
    const status = await ch1.send({ type: 'broadcast', event: 'cursor', payload: { x: 1, y: 2 } });
    assert.equal(status, 'ok');
    const [p] = await got.take(1);
    assert.deepEqual(p.payload, { x: 1, y: 2 });
    assert.equal(p.event, 'cursor');
    assert.equal((await mine.take(1)).length, 1, 'self: true delivers to the sender');
    await ch1.track({ user: 'alice' });
    const deadline = Date.now() + 10000;
    while (!ch2.presenceState().one && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(ch2.presenceState().one?.[0]?.user, 'alice');
    await ch1.untrack();
    while (ch2.presenceState().one && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 100));
    assert.equal(ch2.presenceState().one, undefined, 'untrack leaves');
  });
}

test('binary broadcasts (ArrayBuffer) reach vsn 2 subscribers as binary, not vsn 1 ones', async () => {
  const sender = rtClient('2.0.0');
  const v2 = rtClient('2.0.0');
  const v1 = rtClient('1.0.0');
  clients.push(sender, v2, v1);
  const room = `binary-${suffix}`;
  const got2 = collector();
  const got1 = collector();
  const mine = collector();
  const chs = sender.channel(room, { config: { broadcast: { self: true, ack: true } } });
  chs.on('broadcast', { event: 'blob' }, (p) => mine.push(p));
  const ch2 = v2.channel(room).on('broadcast', { event: '*' }, (p) => got2.push(p));
  const ch1 = v1.channel(room).on('broadcast', { event: '*' }, (p) => got1.push(p));
  await subscribed(chs);
  await subscribed(ch2);
  await subscribed(ch1);
  const bytes = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
  assert.equal(await chs.send({ type: 'broadcast', event: 'blob', payload: bytes.buffer }), 'ok');
  const [p] = await got2.take(1);
  assert.equal(p.event, 'blob');
  assert.equal(p.type, 'broadcast');
  assert.ok(p.payload instanceof ArrayBuffer, `an ArrayBuffer, got ${typeof p.payload}`);
  assert.deepEqual([...new Uint8Array(p.payload)], [...bytes]);
  const [own] = await mine.take(1);
  assert.deepEqual([...new Uint8Array(own.payload)], [...bytes], 'self: true gets its own binary broadcast');
  // A JSON broadcast after it: the vsn 1 client gets that one only.
  assert.equal(await chs.send({ type: 'broadcast', event: 'json', payload: { n: 2 } }), 'ok');
  const [j] = await got1.take(1);
  assert.equal(j.event, 'json');
  assert.deepEqual(j.payload, { n: 2 });
  assert.equal(got1.items.length, 1, 'the binary broadcast is not sent to vsn 1');
  const [, j2] = await got2.take(2);
  assert.deepEqual(j2.payload, { n: 2 }, 'JSON broadcasts still reach vsn 2');
});

test('broadcast over HTTP reaches subscribers', async () => {
  const c = rtClient();
  clients.push(c);
  const got = collector();
  const room = `http-${suffix}`;
  await subscribed(c.channel(room).on('broadcast', { event: 'ping' }, (p) => got.push(p)));
  const res = await fetch(`${url}/realtime/v1/api/broadcast`, {
    method: 'POST',
    headers: { apikey: serviceKey, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ topic: room, event: 'ping', payload: { n: 1 } }] }),
  });
  assert.equal(res.status, 202);
  const [p] = await got.take(1);
  assert.deepEqual(p.payload, { n: 1 });
});

test('httpSend: JSON and binary (ArrayBuffer) payloads; binary reaches vsn 2 as binary, not vsn 1', async () => {
  const sender = rtClient('2.0.0', serviceKey);
  const v2 = rtClient('2.0.0');
  const v1 = rtClient('1.0.0');
  clients.push(sender, v2, v1);
  const room = `http-send-${suffix}`;
  const got2 = collector();
  const got1 = collector();
  await subscribed(v2.channel(room).on('broadcast', { event: '*' }, (p) => got2.push(p)));
  await subscribed(v1.channel(room).on('broadcast', { event: '*' }, (p) => got1.push(p)));
  // The sender never subscribes: httpSend posts to /api/broadcast/<topic>/events/<event>.
  const ch = sender.channel(room);
  const bytes = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
  assert.deepEqual(await ch.httpSend('blob', bytes.buffer), { success: true });
  const [b] = await got2.take(1);
  assert.equal(b.event, 'blob');
  assert.ok(b.payload instanceof ArrayBuffer, `an ArrayBuffer, got ${typeof b.payload}`);
  assert.deepEqual([...new Uint8Array(b.payload)], [...bytes]);
  assert.deepEqual(await ch.httpSend('json', { n: 3, s: 'é' }), { success: true });
  const [j] = await got1.take(1);
  assert.equal(j.event, 'json');
  assert.deepEqual(j.payload, { n: 3, s: 'é' });
  assert.equal(got1.items.length, 1, 'the binary payload is not sent to vsn 1');
  const [, j2] = await got2.take(2);
  assert.deepEqual(j2.payload, { n: 3, s: 'é' });
  // Storing for replay is not supported: a clear error, not a silent drop.
  await assert.rejects(sender.channel(`${room}-private`, { config: { private: true } }).httpSend('x', { n: 1 }, { persist: true }), /persist/);
});

test('bad filters are refused with a clear error', async () => {
  const c = rtClient();
  clients.push(c);
  const ch = c.channel(`bad-${suffix}`).on('postgres_changes', { event: '*', schema: 'public', table: T, filter: 'id=match.x' }, () => {});
  await assert.rejects(subscribed(ch), /not supported/);
});
