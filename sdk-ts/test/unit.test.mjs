// Unit tests without a server: the SSE parser, positions, storage helpers,
// and the subscription's reactions (410, gap, refusals, handler failures),
// driven by a scripted fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import {
  SseParser,
  comparePositions,
  compareLsns,
  connection,
  subscribeChanges,
  waitFor,
  memoryStorage,
  localStorageStorage,
  createClient,
  ResnapshotRequiredError,
  ChangeStreamError,
  ChangeHandlerError,
  WaitTimeoutError,
} from '../dist/index.js';

const BASE = 'http://fluxbase.invalid';

test('SSE parser: fields, comments, CRLF/CR/LF and chunk splits', () => {
  const text = ': keep-alive\r\nid: 0/1:0\r\nevent: change\r\ndata: {"a":\r\ndata: 1}\r\n\r\nevent:end\rdata:x\r\rdata: no-event\n\nid: 9\n\n';
  const want = [
    { event: 'change', data: '{"a":\n1}', id: '0/1:0' },
    { event: 'end', data: 'x' },
    { event: 'message', data: 'no-event' },
  ];
  // Whole, and split at every character boundary (CR then LF in different chunks included).
  assert.deepEqual(new SseParser().push(text), want);
  for (let i = 1; i < text.length; i++) {
    const p = new SseParser();
    assert.deepEqual([...p.push(text.slice(0, i)), ...p.push(text.slice(i))], want, `split at ${i}`);
  }
  // An event cut off by the end of input is not dispatched.
  assert.deepEqual(new SseParser().push('data: partial\n'), []);
});

test('positions and LSNs order as the server orders them', () => {
  assert.equal(comparePositions('0/16B3748:2', '0/16B3748:10'), -1);
  assert.equal(comparePositions('1/0:0', '0/FFFFFFFF:7'), 1);
  assert.equal(comparePositions('0/10', '0/10:4294967295'), 0, 'a bare LSN is after everything at it');
  assert.equal(comparePositions('0/10:5', '0/10'), -1);
  assert.equal(comparePositions('junk', '0/1:0'), null);
  assert.equal(compareLsns('0/A', '0/9'), 1);
});

test('storage helpers', async () => {
  const m = memoryStorage({ a: '0/1:0' });
  assert.equal(m.get('a'), '0/1:0');
  m.set('b', '0/2:0');
  assert.equal(m.entries.get('b'), '0/2:0');
  const backing = new Map();
  const fake = { getItem: (k) => backing.get(k) ?? null, setItem: (k, v) => backing.set(k, v) };
  const ls = localStorageStorage('app:', fake);
  assert.equal(ls.get('public.t'), null);
  ls.set('public.t', '0/3:1');
  assert.equal(backing.get('app:public.t'), '0/3:1');
  assert.throws(() => localStorageStorage('x:').get('k'), /no localStorage/);
});

/** A scripted server: each stream request gets the next response from `script`. */
function scripted(script) {
  const requests = [];
  const fetch = async (input, init = {}) => {
    const u = new URL(String(input));
    const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    requests.push({ path: u.pathname, params: Object.fromEntries(u.searchParams), headers });
    if (u.pathname === '/changes/v1/wait') return Response.json({ lsn: '0/100' });
    const next = script.shift();
    if (!next) return new Promise((_, reject) => init.signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    return typeof next === 'function' ? next(init) : next;
  };
  return { fetch, requests };
}
function sse(events, { hang = false } = {}) {
  const text = events
    .map((e) => `${e.id ? `id: ${e.id}\n` : ''}event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`)
    .join('');
  return (init) => {
    const body = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(text));
        if (!hang) c.close();
        else init.signal?.addEventListener('abort', () => c.error(new Error('aborted')));
      },
    });
    return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
  };
}
const change = (position, id) => ({ id: position, event: 'change', data: { position, type: 'INSERT', schema: 'public', table: 't', record: { id } } });
function until(cond, ms = 5000) {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error('timed out')) : setTimeout(tick, 5));
    tick();
  });
}

test('starts from the durable LSN, resumes with Last-Event-ID, never repeats a position', async () => {
  const srv = scripted([
    sse([change('0/200:0', 1), change('0/200:1', 2)]),
    // A replay overlapping the seam: the SDK drops what it has already delivered.
    sse([change('0/200:1', 2), change('0/300:0', 3)], { hang: true }),
  ]);
  const conn = connection(BASE, 'anon-key', { fetch: srv.fetch });
  const storage = memoryStorage();
  const got = [];
  const sub = subscribeChanges(conn, { table: 't', storage, backoff: { initialMs: 1 }, onChange: (c) => got.push(c.record.id) });
  await until(() => got.length === 3);
  sub.unsubscribe();
  assert.deepEqual(got, [1, 2, 3]);
  const streams = srv.requests.filter((r) => r.path === '/changes/v1/stream');
  assert.equal(streams[0].params.from, '0/100', 'now is resolved to the durable LSN first');
  assert.equal(streams[0].params.tables, 'public.t');
  assert.equal(streams[0].headers.apikey, 'anon-key');
  assert.equal(streams[0].headers.authorization, 'Bearer anon-key');
  assert.equal(streams[1].headers['last-event-id'], '0/200:1');
  assert.equal(storage.get('public.t'), '0/300:0');
  assert.equal(sub.position(), '0/300:0');
});

test('410 position_expired: onError says resnapshot, then the stream continues from now', async () => {
  const srv = scripted([
    Response.json({ code: 'position_expired', message: 'position 0/1:0 is older than the retention' }, { status: 410 }),
    sse([change('0/500:0', 5)], { hang: true }),
  ]);
  const errors = [];
  const got = [];
  const sub = subscribeChanges(connection(BASE, 'k', { fetch: srv.fetch }), {
    table: 't',
    since: '0/1:0',
    onChange: (c) => got.push(c.record.id),
    onError: (e) => errors.push(e),
  });
  await until(() => got.length === 1);
  sub.unsubscribe();
  assert.ok(errors[0] instanceof ResnapshotRequiredError);
  assert.equal(errors[0].reason, 'position_expired');
  assert.equal(errors[0].position, '0/1:0');
  const streams = srv.requests.filter((r) => r.path === '/changes/v1/stream');
  assert.equal(streams[0].headers['last-event-id'], '0/1:0');
  assert.equal(streams[1].params.from, '0/100', 'from now (the durable LSN)');
});

test('event: gap: onError (awaited) says resnapshot, and delivery continues after the gap', async () => {
  const order = [];
  const srv = scripted([
    sse([change('0/600:0', 6), { id: '0/700:0', event: 'gap', data: { position: '0/700:0', type: 'GAP', message: 'lost' } }, change('0/800:0', 8)], { hang: true }),
  ]);
  const sub = subscribeChanges(connection(BASE, 'k', { fetch: srv.fetch }), {
    table: 't',
    onChange: (c) => order.push(c.record.id),
    onError: async (e) => {
      order.push(e);
      await new Promise((r) => setTimeout(r, 50)); // the app resnapshots
      order.push('resnapshotted');
    },
  });
  await until(() => order.length === 4);
  sub.unsubscribe();
  assert.equal(order[0], 6);
  assert.ok(order[1] instanceof ResnapshotRequiredError && order[1].reason === 'gap' && order[1].position === '0/700:0');
  assert.deepEqual(order.slice(2), ['resnapshotted', 8]);
});

test('a refused request (400) stops the subscription with a fatal error', async () => {
  const srv = scripted([Response.json({ code: 'bad_filter', message: 'unknown operator' }, { status: 400 })]);
  const errors = [];
  const statuses = [];
  subscribeChanges(connection(BASE, 'k', { fetch: srv.fetch }), {
    table: 't',
    filter: 'id=zz.1',
    onChange: () => {},
    onError: (e) => errors.push(e),
    onStatus: (s) => statuses.push(s),
  });
  await until(() => statuses.includes('closed'));
  assert.ok(errors[0] instanceof ChangeStreamError);
  assert.equal(errors[0].fatal, true);
  assert.equal(errors[0].code, 'bad_filter');
  assert.equal(errors[0].status, 400);
  assert.equal(srv.requests.filter((r) => r.path === '/changes/v1/stream')[0].params.filter, 'id=zz.1');
});

test('a failing onChange is reported and the change is delivered again; positions wait for promises', async () => {
  const srv = scripted([sse([change('0/900:0', 9), change('0/900:1', 10)]), sse([change('0/900:1', 10)], { hang: true })]);
  const storage = memoryStorage();
  const errors = [];
  const seen = [];
  let failed = false;
  let release;
  const sub = subscribeChanges(connection(BASE, 'k', { fetch: srv.fetch }), {
    table: 't',
    storage,
    backoff: { initialMs: 1 },
    onError: (e) => errors.push(e),
    onChange: async (c) => {
      seen.push(c.record.id);
      if (c.record.id === 10 && !failed) {
        failed = true;
        throw new Error('db down');
      }
      if (c.record.id === 10) await new Promise((r) => (release = r));
    },
  });
  await until(() => seen.length === 3 && release);
  assert.deepEqual(seen, [9, 10, 10]);
  assert.ok(errors[0] instanceof ChangeHandlerError && errors[0].position === '0/900:1');
  assert.equal(storage.get('public.t'), '0/900:0', 'not saved while the handler runs');
  release();
  await until(() => storage.get('public.t') === '0/900:1');
  sub.unsubscribe();
});

test('waitFor: 200 resolves, 408 rejects with WaitTimeoutError; lastLsn tracks X-Fluxbase-Lsn', async () => {
  const calls = [];
  const fakeFetch = async (input) => {
    const u = new URL(String(input));
    calls.push(u);
    if (u.pathname === '/changes/v1/wait') {
      return u.searchParams.get('lsn') === '0/10'
        ? Response.json({ lsn: '0/20' })
        : Response.json({ code: 'timeout', message: 'no' }, { status: 408 });
    }
    return Response.json([{ id: 1 }], { status: 201, headers: { 'x-fluxbase-lsn': '0/10', 'content-type': 'application/json' } });
  };
  const conn = connection(BASE, 'k', { fetch: fakeFetch });
  assert.deepEqual(await waitFor(conn, '0/10'), { lsn: '0/20' });
  await assert.rejects(waitFor(conn, 'F/0', { timeoutMs: 0 }), (e) => e instanceof WaitTimeoutError && e.status === 408);

  const client = createClient(BASE, 'k', { auth: { persistSession: false }, global: { fetch: fakeFetch }, realtime: { transport: WebSocket } });
  assert.equal(client.lastLsn(), null);
  assert.deepEqual(await client.waitFor(), { lsn: null }, 'nothing written: nothing to wait for');
  await client.from('todos').insert({ id: 1 }).select();
  assert.equal(client.lastLsn(), '0/10');
  assert.deepEqual(await client.waitFor(), { lsn: '0/20' });
  assert.equal(calls.at(-1).searchParams.get('lsn'), '0/10');
});
