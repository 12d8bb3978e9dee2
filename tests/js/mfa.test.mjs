// MFA (TOTP) through supabase-js: enroll, challenge, verify to AAL2,
// listFactors, unenroll, admin factor endpoints, lockout after failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { client, serviceKey } from './helpers.mjs';

const rnd = () => crypto.randomBytes(6).toString('hex');

function base32Decode(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0;
  const out = [];
  for (const ch of s.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
}

function totp(secret, offset = 0) {
  const counter = Math.floor(Date.now() / 1000 / 30) + offset;
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(counter));
  const h = crypto.createHmac('sha1', base32Decode(secret)).update(buf).digest();
  const off = h[h.length - 1] & 0xf;
  const code = (h.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, '0');
}

async function user() {
  const c = client();
  const { error } = await c.auth.signUp({ email: `mfa-${rnd()}@example.com`, password: 'mfa-pass-123' });
  assert.equal(error, null);
  return c;
}

test('TOTP enroll, challenge, verify raises the session to aal2', async () => {
  const c = await user();
  const { data: enrolled, error } = await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'phone' });
  assert.equal(error, null);
  assert.equal(enrolled.type, 'totp');
  assert.ok(enrolled.totp.qr_code.startsWith('data:image/svg+xml;utf-8,<?xml') || enrolled.totp.qr_code.includes('<svg'));
  assert.match(enrolled.totp.uri, /^otpauth:\/\/totp\//);
  let aal = await c.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.equal(aal.data.currentLevel, 'aal1');

  const { data: ch } = await c.auth.mfa.challenge({ factorId: enrolled.id });
  assert.ok(ch.id);
  assert.ok(ch.expires_at > Date.now() / 1000);
  const bad = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: ch.id, code: '000000' === totp(enrolled.totp.secret) ? '111111' : '000000' });
  assert.equal(bad.error.code, 'mfa_verification_failed');
  const { data: session, error: vErr } = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: ch.id, code: totp(enrolled.totp.secret) });
  assert.equal(vErr, null);
  assert.ok(session.access_token);
  const claims = JSON.parse(Buffer.from(session.access_token.split('.')[1], 'base64url'));
  assert.equal(claims.aal, 'aal2');
  assert.ok(claims.amr.some((m) => m.method === 'totp'));
  aal = await c.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.equal(aal.data.currentLevel, 'aal2');
  assert.equal(aal.data.nextLevel, 'aal2');
  const { data: factors } = await c.auth.mfa.listFactors();
  assert.equal(factors.totp.length, 1);
  assert.equal(factors.totp[0].status, 'verified');
  // A challenge is good for one verification.
  const again = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: ch.id, code: totp(enrolled.totp.secret) });
  assert.equal(again.error.code, 'mfa_challenge_expired');
  // Refreshing keeps aal2.
  const r = await c.auth.refreshSession();
  assert.equal(JSON.parse(Buffer.from(r.data.session.access_token.split('.')[1], 'base64url')).aal, 'aal2');

  // A new sign-in starts at aal1 and must step up.
  const email = (await c.auth.getUser()).data.user.email;
  const c2 = client();
  await c2.auth.signInWithPassword({ email, password: 'mfa-pass-123' });
  const lvl = await c2.auth.mfa.getAuthenticatorAssuranceLevel();
  assert.equal(lvl.data.currentLevel, 'aal1');
  assert.equal(lvl.data.nextLevel, 'aal2');
  const more = await c2.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'second' });
  assert.equal(more.error.code, 'insufficient_aal');
  const un = await c2.auth.mfa.unenroll({ factorId: enrolled.id });
  assert.equal(un.error.code, 'insufficient_aal');

  // Unenroll at aal2.
  const ok = await c.auth.mfa.unenroll({ factorId: enrolled.id });
  assert.equal(ok.error, null);
});

test('admin lists and deletes factors', async () => {
  const c = await user();
  const { data: enrolled } = await c.auth.mfa.enroll({ factorType: 'totp', friendlyName: 'x' });
  const uid = (await c.auth.getUser()).data.user.id;
  const admin = client(serviceKey);
  const { data: list, error } = await admin.auth.admin.mfa.listFactors({ userId: uid });
  assert.equal(error, null);
  assert.equal(list.factors.length, 1);
  const del = await admin.auth.admin.mfa.deleteFactor({ userId: uid, id: enrolled.id });
  assert.equal(del.error, null);
  // supabase-js wraps this one twice: {data: {data: factor}}.
  assert.equal((del.data.data ?? del.data).id, enrolled.id);
});

test('repeated wrong codes lock the factor', async () => {
  const c = await user();
  const { data: enrolled } = await c.auth.mfa.enroll({ factorType: 'totp' });
  const good = totp(enrolled.totp.secret);
  const wrong = good === '123456' ? '654321' : '123456';
  const codes = [];
  for (let i = 0; i < 6; i++) {
    const { data: ch } = await c.auth.mfa.challenge({ factorId: enrolled.id });
    const r = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: ch.id, code: wrong });
    codes.push(r.error.status);
  }
  assert.deepEqual(codes, [422, 422, 422, 422, 422, 429]);
  const { data: ch } = await c.auth.mfa.challenge({ factorId: enrolled.id });
  const locked = await c.auth.mfa.verify({ factorId: enrolled.id, challengeId: ch.id, code: good });
  assert.equal(locked.error.status, 429, 'even the right code is refused while locked');
});
