// P7: single-row insert with RLS (return=minimal).
import http from 'k6/http';
import { check } from 'k6';
import { BASE, USER_TOKEN, headers } from './common.js';
export { options } from './common.js';

const H = { headers: headers(USER_TOKEN) };
export default function () {
  const r = http.post(`${BASE}/bench_items`, JSON.stringify({ owner_ref: 1, payload: 'k6' }), H);
  check(r, { 201: (x) => x.status === 201 });
}
