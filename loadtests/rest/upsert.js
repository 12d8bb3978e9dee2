// Upsert of an existing row (merge-duplicates) with RLS.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, USER, USER_TOKEN, headers } from './common.js';
export { options } from './common.js';

const H = { headers: headers(USER_TOKEN, { Prefer: 'resolution=merge-duplicates' }) };
export default function () {
  const id = 1 + Math.floor(Math.random() * 10000);
  const r = http.post(`${BASE}/bench_items`, JSON.stringify({ id, owner: USER, owner_ref: 2, payload: 'up' }), H);
  check(r, { '2xx': (x) => x.status === 200 || x.status === 201 });
}
