// P8: the P6 request with a freshly signed JWT on every request.
import http from 'k6/http';
import { check } from 'k6';
import { BASE, USER, sign, headers } from './common.js';
export { options } from './common.js';

let n = 0;
export default function () {
  n += 1;
  const token = sign({ sub: USER, role: 'authenticated', aud: 'authenticated', exp: 4000000000, jti: `${__VU}-${n}` });
  const id = 1 + Math.floor(Math.random() * 10000);
  const r = http.get(`${BASE}/bench_items?id=eq.${id}&select=id,payload`, { headers: headers(token) });
  check(r, { 200: (x) => x.status === 200 });
}
