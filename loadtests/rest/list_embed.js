// A filtered list with one many-to-one embed.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, USER_TOKEN, headers } from './common.js';
export { options } from './common.js';

const H = { headers: headers(USER_TOKEN) };
export default function () {
  const o = 1 + Math.floor(Math.random() * 100);
  const r = http.get(`${BASE}/bench_items?owner_ref=eq.${o}&select=id,payload,bench_owners(name)&order=id&limit=10`, H);
  check(r, { 200: (x) => x.status === 200 });
}
