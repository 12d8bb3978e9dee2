// P6: GET one row by primary key with a user JWT, through RLS.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, USER_TOKEN, headers } from './common.js';
export { options } from './common.js';

const H = { headers: headers(USER_TOKEN) };
export default function () {
  const id = 1 + Math.floor(Math.random() * 10000);
  const r = http.get(`${BASE}/bench_items?id=eq.${id}&select=id,payload`, H);
  check(r, { 200: (x) => x.status === 200 });
}
