// Shared by the k6 scenarios: base URL, keys and HS256 signing of user JWTs.
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

export const BASE = `${__ENV.API_URL}/rest/v1`;
export const ANON = __ENV.ANON_KEY;
export const USER = '00000000-0000-0000-0000-00000000000b';

export function sign(claims) {
  const b64 = (o) => encoding.b64encode(JSON.stringify(o), 'rawurl');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = crypto.hmac('sha256', __ENV.JWT_SECRET, `${head}.${body}`, 'base64rawurl');
  return `${head}.${body}.${sig}`;
}

export const USER_TOKEN = sign({ sub: USER, role: 'authenticated', aud: 'authenticated', exp: 4000000000 });

export function headers(token, extra) {
  return Object.assign({ apikey: ANON, Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, extra || {});
}

export const options = {
  vus: Number(__ENV.VUS || 16),
  duration: __ENV.DURATION || '10s',
  summaryTrendStats: ['avg', 'p(50)', 'p(95)', 'p(99)'],
};
