// REST scenarios (P6-P8) against the Supabase-compatible /rest/v1 (PostgREST dialect).
// MODE: get | list | insert | upsert | rpc | distinct_jwt. Schema: ../sql/rest_schema.sql.
// Env: BASE_URL, ANON_KEY, JWT_SECRET, NITEMS, VUS, DURATION, SUMMARY_FILE.
import http from 'k6/http';
import { check } from 'k6';
import { userToken } from './jwt.js';
import { summary } from './summary.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:54321';
const ANON = __ENV.ANON_KEY || '';
const SECRET = __ENV.JWT_SECRET || '';
const MODE = __ENV.MODE || 'get';
const NITEMS = parseInt(__ENV.NITEMS || '100000', 10);
const USERS = 100;

export const options = {
  vus: parseInt(__ENV.VUS || '16', 10),
  duration: __ENV.DURATION || '20s',
  discardResponseBodies: true,
  // Reported, never enforced: the runner ignores k6's exit status 99.
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<50'],
  },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

// One token per user, made once per VU (init context); distinct_jwt signs a new one per request.
const TOKENS = [];
for (let u = 1; u <= USERS; u++) TOKENS.push(userToken(SECRET, u));

function pick() {
  const u = 1 + Math.floor(Math.random() * USERS);
  const k = 1 + Math.floor(Math.random() * (NITEMS / USERS - 1));
  return { u, id: k * USERS + u - 1 };
}

function headers(token, extra) {
  return Object.assign({ apikey: ANON, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, extra || {});
}

export default function () {
  const { u, id } = pick();
  let res;
  switch (MODE) {
    case 'get':
      res = http.get(`${BASE}/rest/v1/items?id=eq.${id}&select=*`, { headers: headers(TOKENS[u - 1]), tags: { name: 'items by pk' } });
      break;
    case 'distinct_jwt':
      res = http.get(`${BASE}/rest/v1/items?id=eq.${id}&select=*`, {
        headers: headers(userToken(SECRET, u, { jti: `${__VU}-${__ITER}`, session_id: `${__VU}-${__ITER}` })),
        tags: { name: 'items by pk, fresh jwt' },
      });
      break;
    case 'list':
      res = http.get(`${BASE}/rest/v1/items?select=id,name,price,categories(name)&price=lt.100&limit=20`, {
        headers: headers(TOKENS[u - 1]), tags: { name: 'items list + embed' },
      });
      break;
    case 'insert': {
      const newId = 1000000000 + Math.floor(Math.random() * 9e15);
      res = http.post(`${BASE}/rest/v1/items`, JSON.stringify({ id: newId, owner: userIdOf(u), category_id: (newId % 20) + 1, name: 'new item', price: 5 }), {
        headers: headers(TOKENS[u - 1], { Prefer: 'return=minimal' }), tags: { name: 'insert' },
      });
      break;
    }
    case 'upsert':
      res = http.post(`${BASE}/rest/v1/items`, JSON.stringify({ id, owner: userIdOf(u), category_id: 2, name: 'upserted', price: 7 }), {
        headers: headers(TOKENS[u - 1], { Prefer: 'resolution=merge-duplicates,return=minimal' }), tags: { name: 'upsert' },
      });
      break;
    case 'rpc':
      res = http.post(`${BASE}/rest/v1/rpc/add_them`, JSON.stringify({ a: 1, b: 2 }), { headers: headers(TOKENS[u - 1]), tags: { name: 'rpc' } });
      break;
    default:
      throw new Error(`unknown MODE ${MODE}`);
  }
  check(res, { '2xx': (r) => r.status >= 200 && r.status < 300 });
}

function userIdOf(u) {
  return `00000000-0000-0000-0000-${String(u).padStart(12, '0')}`;
}

export function handleSummary(data) {
  return summary(data);
}
