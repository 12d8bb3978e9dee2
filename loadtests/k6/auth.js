// Auth scenarios (P9, P10) against the GoTrue-compatible /auth/v1.
// MODE: signin (POST /auth/v1/token?grant_type=password) | refresh (grant_type=refresh_token).
// Env: BASE_URL, ANON_KEY, VUS, DURATION, SUMMARY_FILE.
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { summary } from './summary.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:54321';
const ANON = __ENV.ANON_KEY || '';
const MODE = __ENV.MODE || 'signin';
const VUS = parseInt(__ENV.VUS || '4', 10);
const PASSWORD = 'load-test-password-1';
const H = { apikey: ANON, Authorization: `Bearer ${ANON}`, 'Content-Type': 'application/json' };

const signins = new Counter('signins');
const refreshes = new Counter('refreshes');

export const options = {
  vus: VUS,
  duration: __ENV.DURATION || '15s',
  discardResponseBodies: false,
  thresholds: { http_req_failed: ['rate<0.01'] }, // reported, not enforced
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

// One user per VU, signed up once before the measured part. The sign-up's
// refresh token is the VU's first, so refresh mode spends no hash while
// measured. `setup_ms` lets the runner take setup out of the run's time
// (k6's counter rates divide by the whole run, setup included).
export function setup() {
  const started = Date.now();
  const users = [];
  const tokens = [];
  for (let i = 1; i <= VUS; i++) {
    const email = `load-${started}-${i}@example.com`;
    const res = http.post(`${BASE}/auth/v1/signup`, JSON.stringify({ email, password: PASSWORD }), { headers: H });
    check(res, { 'signup 2xx': (r) => r.status >= 200 && r.status < 300 });
    users.push(email);
    tokens.push(res.status === 200 ? res.json('refresh_token') : null);
  }
  return { users, tokens, setup_ms: Date.now() - started };
}

let refreshToken = null;
let first = true;

export default function (data) {
  const email = data.users[(__VU - 1) % data.users.length];
  if (first) {
    first = false;
    if (MODE === 'refresh') refreshToken = data.tokens[(__VU - 1) % data.tokens.length];
  }
  if (MODE === 'signin' || refreshToken === null) {
    const res = http.post(`${BASE}/auth/v1/token?grant_type=password`, JSON.stringify({ email, password: PASSWORD }), { headers: H, tags: { name: 'signin' } });
    if (check(res, { 'signin 200': (r) => r.status === 200 })) {
      if (MODE === 'signin') signins.add(1);
      refreshToken = res.json('refresh_token');
    }
    if (MODE === 'signin') return;
  }
  const res = http.post(`${BASE}/auth/v1/token?grant_type=refresh_token`, JSON.stringify({ refresh_token: refreshToken }), { headers: H, tags: { name: 'refresh' } });
  if (check(res, { 'refresh 200': (r) => r.status === 200 })) {
    refreshes.add(1);
    refreshToken = res.json('refresh_token'); // tokens rotate
  } else {
    refreshToken = null;
  }
}

export function handleSummary(data) {
  return summary(data);
}
