// The realtime wire protocol with a raw WebSocket: heartbeats, malformed
// frames, resume with config.since (no gap, no duplicate), token expiry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import pg from 'pg';
import WebSocket from 'ws';
import { url, anonKey, serviceKey, dbUrl } from './helpers.mjs';

const secret = process.env.FLUXBASE_JWT_SECRET;
const T = `rp_items_${crypto.randomBytes(4).toString('hex')}`;
const db = new pg.Client({ connectionString: dbUrl });

function jwt(claims) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = enc({ alg: 'HS256', typ: 'JWT' });
  const body = enc(claims);
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

class Sock {
  constructor(key = anonKey, vsn = '2.0.0') {
    this.vsn = vsn;
    this.msgs = [];
    this.waiters = [];
    this.ref = 0;
    this.ws = new WebSocket(`${url.replace('http', 'ws')}/realtime/v1/websocket?apikey=${key}&vsn=${vsn}`);
    this.ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      this.msgs.push(Array.isArray(m) ? { join_ref: m[0], ref: m[1], topic: m[2], event: m[3], payload: m[4] } : m);
      this.waiters.splice(0).forEach((w) => w());
    });
    this.open = new Promise((r) => this.ws.on('open', r));
  }
  send(topic, event, payload, joinRef = null) {
    const ref = String(++this.ref);
    this.ws.send(JSON.stringify([joinRef, ref, topic, event, payload]));
    return ref;
  }
  async wait(pred, ms = 10000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.msgs.findIndex(pred);
      if (i >= 0) return this.msgs.splice(i, 1)[0];
      if (Date.now() > deadline) return undefined;
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }
  close() { this.ws.close(); }
}

before(async () => {
  await db.connect();
  await db.query(`create table public.${T} (id bigint primary key, v text)`);
});
after(() => db.end());

test('heartbeat, malformed frames and unknown events', async () => {
  const s = new Sock();
  await s.open;
  const ref = s.send('phoenix', 'heartbeat', {});
  const hb = await s.wait((m) => m.ref === ref);
  assert.equal(hb.payload.status, 'ok');
  s.ws.send('this is not json');
  const sys = await s.wait((m) => m.event === 'system');
  assert.equal(sys.payload.status, 'error');
  const r2 = s.send('realtime:x', 'nonsense', {});
  const rep = await s.wait((m) => m.ref === r2);
  assert.equal(rep.payload.status, 'error');
  const r3 = s.send('realtime:', 'phx_join', { config: {} }, '9');
  const bad = await s.wait((m) => m.ref === r3);
  assert.match(bad.payload.response.reason, /TopicNameRequired/);
  // Still alive.
  const r4 = s.send('phoenix', 'heartbeat', {});
  assert.ok(await s.wait((m) => m.ref === r4));
  s.close();
});

test('resume with config.since: exactly the missed changes, in order', async () => {
  const config = { postgres_changes: [{ event: '*', schema: 'public', table: T }] };
  const s = new Sock(serviceKey);
  await s.open;
  const jr = s.send('realtime:resume', 'phx_join', { config, access_token: serviceKey }, '1');
  await s.wait((m) => m.ref === jr);
  await db.query(`insert into public.${T} values (1, 'a'), (2, 'b')`);
  const first = await s.wait((m) => m.event === 'postgres_changes');
  const second = await s.wait((m) => m.event === 'postgres_changes');
  assert.equal(first.payload.data.record.id, 1);
  const since = first.payload.data.position;
  assert.ok(since, 'changes carry their position');
  s.close();
  await db.query(`insert into public.${T} values (3, 'c')`);
  const s2 = new Sock(serviceKey);
  await s2.open;
  const jr2 = s2.send('realtime:resume', 'phx_join', { config: { ...config, since }, access_token: serviceKey }, '1');
  await s2.wait((m) => m.ref === jr2);
  await db.query(`insert into public.${T} values (4, 'd')`);
  const ids = [];
  for (let i = 0; i < 3; i++) {
    const m = await s2.wait((x) => x.event === 'postgres_changes');
    ids.push(m?.payload.data.record.id);
  }
  assert.deepEqual(ids, [2, 3, 4]);
  assert.equal(await s2.wait((x) => x.event === 'postgres_changes', 500), undefined, 'nothing twice');
  void second;
  s2.close();
});

test('private channels are authorised by RLS on realtime.messages', async () => {
  const tag = crypto.randomBytes(3).toString('hex');
  await db.query(`create policy "read ${tag}" on realtime.messages for select to authenticated using (realtime.topic() = 'allowed-${tag}');
                  create policy "write ${tag}" on realtime.messages for insert to authenticated with check (realtime.topic() = 'allowed-${tag}')`);
  const token = jwt({ sub: crypto.randomUUID(), role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 600 });
  const s = new Sock();
  await s.open;
  const ok = s.send(`realtime:allowed-${tag}`, 'phx_join', { config: { private: true, broadcast: { ack: true } }, access_token: token }, '1');
  assert.equal((await s.wait((m) => m.ref === ok)).payload.status, 'ok');
  const sent = s.send(`realtime:allowed-${tag}`, 'broadcast', { type: 'broadcast', event: 'e', payload: {} }, '1');
  assert.equal((await s.wait((m) => m.ref === sent)).payload.status, 'ok', 'the INSERT policy allows sending');
  const no = s.send(`realtime:denied-${tag}`, 'phx_join', { config: { private: true }, access_token: token }, '2');
  const rej = await s.wait((m) => m.ref === no);
  assert.equal(rej.payload.status, 'error');
  assert.match(rej.payload.response.reason, /Unauthorized/);
  const anon = s.send(`realtime:allowed-${tag}-x`, 'phx_join', { config: { private: true } }, '3');
  assert.equal((await s.wait((m) => m.ref === anon)).payload.status, 'error', 'anon has no policy');
  s.close();
});

test('an expired token closes the channel with a system error', async () => {
  const s = new Sock();
  await s.open;
  const token = jwt({ sub: crypto.randomUUID(), role: 'authenticated', exp: Math.floor(Date.now() / 1000) + 2 });
  const jr = s.send('realtime:expiring', 'phx_join', { config: {}, access_token: token }, '1');
  const ok = await s.wait((m) => m.ref === jr);
  assert.equal(ok.payload.status, 'ok');
  const sys = await s.wait((m) => m.event === 'system' && m.topic === 'realtime:expiring', 8000);
  assert.match(sys.payload.message, /expired/);
  assert.ok(await s.wait((m) => m.event === 'phx_close', 3000));
  const expired = jwt({ role: 'authenticated', exp: 1000 });
  const jr2 = s.send('realtime:late', 'phx_join', { config: {}, access_token: expired }, '2');
  const rej = await s.wait((m) => m.ref === jr2);
  assert.match(rej.payload.response.reason, /InvalidJWTToken/);
  s.close();
});
