// HS256 JWTs signed in k6 (the same shape GoTrue issues), for RLS scenarios.
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

const HEADER = encoding.b64encode(JSON.stringify({ alg: 'HS256', typ: 'JWT' }), 'rawurl');

export function userId(n) {
  return `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`;
}

export function sign(secret, claims) {
  const body = encoding.b64encode(JSON.stringify(claims), 'rawurl');
  const sig = crypto.hmac('sha256', secret, `${HEADER}.${body}`, 'binary');
  return `${HEADER}.${body}.${encoding.b64encode(sig, 'rawurl')}`;
}

export function userToken(secret, n, extra) {
  const now = Math.floor(Date.now() / 1000);
  return sign(secret, Object.assign({ sub: userId(n), role: 'authenticated', aud: 'authenticated', iat: now, exp: now + 3600 }, extra || {}));
}
