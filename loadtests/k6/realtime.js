// Realtime at small scale, as a browser app sees it: VUS WebSocket clients join
// postgres_changes on public.rt_k6 (Phoenix protocol vsn 1.0.0, as realtime-js),
// while a writer inserts rows through /rest/v1 at RATE rows/s. Each row carries
// the writer's clock (sent_ms), so every client measures write → delivery.
// Figures: join time, delivery latency, deliveries received vs expected.
// Env: BASE_URL, ANON_KEY, SERVICE_KEY, VUS, RATE, DURATION (seconds), SUMMARY_FILE.
import http from 'k6/http';
import ws from 'k6/ws';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { summary } from './summary.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:54321';
const ANON = __ENV.ANON_KEY || '';
const SERVICE = __ENV.SERVICE_KEY || '';
const VUS = parseInt(__ENV.VUS || '20', 10);
const RATE = parseInt(__ENV.RATE || '20', 10);
const SECS = parseInt(__ENV.DURATION || '15', 10);
const WS_URL = `${BASE.replace(/^http/, 'ws')}/realtime/v1/websocket?apikey=${ANON}&vsn=1.0.0`;

const joinMs = new Trend('join_ms', true);
const deliveryMs = new Trend('delivery_ms', true);
const deliveries = new Counter('deliveries');
const joined = new Counter('joined');
const inserts = new Counter('inserts');

export const options = {
  scenarios: {
    // Subscribers stay connected from the start until writing has ended.
    subscribers: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, exec: 'subscriber', maxDuration: `${SECS + 30}s` },
    // The writer starts once the subscribers have had time to join.
    writer: { executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: `${SECS}s`, startTime: '3s',
      preAllocatedVUs: 4, maxVUs: 16, exec: 'writer' },
  },
  thresholds: { delivery_ms: ['p(99)<1000'] }, // reported, not enforced
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

export function subscriber() {
  const topic = `realtime:k6-${__VU}`;
  const join = {
    topic, event: 'phx_join', ref: '1', join_ref: '1',
    payload: {
      config: { broadcast: { self: false }, presence: { key: '' }, postgres_changes: [{ event: 'INSERT', schema: 'public', table: 'rt_k6' }] },
      access_token: ANON,
    },
  };
  const res = ws.connect(WS_URL, {}, (socket) => {
    let sentAt = 0;
    socket.on('open', () => {
      sentAt = Date.now();
      socket.send(JSON.stringify(join));
      socket.setInterval(() => socket.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: 'hb' })), 25000);
    });
    socket.on('message', (text) => {
      const m = JSON.parse(text);
      if (m.event === 'phx_reply' && m.ref === '1') {
        if (m.payload.status === 'ok') {
          joinMs.add(Date.now() - sentAt);
          joined.add(1);
        }
      } else if (m.event === 'postgres_changes') {
        const rec = m.payload.data.record;
        deliveryMs.add(Date.now() - rec.sent_ms);
        deliveries.add(1);
      }
    });
    // Writing starts at 3 s and lasts SECS; leave time for the last rows.
    socket.setTimeout(() => socket.close(), (SECS + 6) * 1000);
  });
  check(res, { 'websocket upgraded': (r) => r && r.status === 101 });
}

export function writer() {
  const res = http.post(`${BASE}/rest/v1/rt_k6`, JSON.stringify({ sent_ms: Date.now() }), {
    headers: { apikey: SERVICE, Authorization: `Bearer ${SERVICE}`, 'Content-Type': 'application/json', Prefer: 'return=minimal' },
  });
  if (check(res, { 'insert 201': (r) => r.status === 201 })) inserts.add(1);
}

export function handleSummary(data) {
  return summary(data);
}
