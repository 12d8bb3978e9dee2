// RPC: a scalar function with named arguments.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, USER_TOKEN, headers } from './common.js';
export { options } from './common.js';

const H = { headers: headers(USER_TOKEN) };
export default function () {
  const r = http.post(`${BASE}/rpc/bench_add`, JSON.stringify({ a: 1, b: 2 }), H);
  check(r, { 200: (x) => x.status === 200 });
}
