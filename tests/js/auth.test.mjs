// Auth (/auth/v1) through the real supabase-js: sign-up, sign-in, sessions,
// refresh rotation, sign-out scopes, anonymous users, OTP / magic links /
// recovery from the captured mailbox, PKCE, and the security cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { client, url, anonKey, serviceKey } from './helpers.mjs';

const rnd = () => crypto.randomBytes(6).toString('hex');
const email = (tag = 'u') => `${tag}-${rnd()}@example.com`;
const admin = () => client(serviceKey);

function pkceClient() {
  return createClient(url, anonKey, { auth: { persistSession: false, autoRefreshToken: false, flowType: 'pkce' }, realtime: { transport: WebSocket } });
}

function decode(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

/** The newest captured mail to `to`, read through the admin endpoint. */
async function mailFor(to) {
  const res = await fetch(`${url}/auth/v1/admin/mail?email=${encodeURIComponent(to)}`, {
    headers: { apikey: serviceKey, Authorization: `Bearer ${serviceKey}` },
  });
  assert.equal(res.status, 200);
  const mails = await res.json();
  assert.ok(mails.length > 0, `a mail to ${to}`);
  return mails[0];
}

async function signedUp(tag = 'u', password = 'secret-pass-1') {
  const c = client();
  const addr = email(tag);
  const { data, error } = await c.auth.signUp({ email: addr, password });
  assert.equal(error, null);
  return { c, addr, password, session: data.session, user: data.user };
}

test('signUp with autoconfirm returns a session with GoTrue claims', async () => {
  const c = client();
  const addr = email();
  const { data, error } = await c.auth.signUp({ email: addr, password: 'secret-pass-1', options: { data: { name: 'Ann' } } });
  assert.equal(error, null);
  assert.ok(data.session.access_token && data.session.refresh_token);
  assert.equal(data.session.token_type, 'bearer');
  assert.equal(data.session.expires_in, 3600);
  assert.equal(data.user.email, addr);
  assert.equal(data.user.role, 'authenticated');
  assert.equal(data.user.aud, 'authenticated');
  assert.equal(data.user.user_metadata.name, 'Ann');
  assert.deepEqual(data.user.app_metadata, { provider: 'email', providers: ['email'] });
  assert.equal(data.user.identities.length, 1);
  assert.equal(data.user.identities[0].provider, 'email');
  assert.ok(data.user.email_confirmed_at);
  assert.equal(data.user.is_anonymous, false);
  const claims = decode(data.session.access_token);
  assert.equal(claims.sub, data.user.id);
  assert.equal(claims.role, 'authenticated');
  assert.equal(claims.aal, 'aal1');
  assert.equal(claims.amr[0].method, 'password');
  assert.ok(claims.session_id);
  assert.equal(claims.email, addr);
  assert.equal(claims.is_anonymous, false);
  assert.equal(claims.exp - claims.iat, 3600);
});

test('signUp again with the same address is user_already_exists', async () => {
  const { addr } = await signedUp();
  const { error } = await client().auth.signUp({ email: addr, password: 'another-pass' });
  assert.equal(error.status, 422);
  assert.equal(error.code, 'user_already_exists');
});

test('weak passwords and bad addresses are refused with GoTrue codes', async () => {
  const { error } = await client().auth.signUp({ email: email(), password: '123' });
  assert.equal(error.status, 422);
  assert.equal(error.code, 'weak_password');
  assert.deepEqual(error.reasons, ['length']);
  const bad = await client().auth.signUp({ email: 'not-an-address', password: 'secret-pass-1' });
  assert.equal(bad.error.status, 400);
  assert.equal(bad.error.code, 'validation_failed');
});

test('signInWithPassword, wrong password and unknown user look the same', async () => {
  const { addr, password } = await signedUp();
  const ok = await client().auth.signInWithPassword({ email: addr, password });
  assert.equal(ok.error, null);
  assert.equal(ok.data.user.email, addr);
  assert.ok(ok.data.user.last_sign_in_at);
  const wrong = await client().auth.signInWithPassword({ email: addr, password: 'wrong-password' });
  const unknown = await client().auth.signInWithPassword({ email: email('nobody'), password: 'wrong-password' });
  for (const r of [wrong, unknown]) {
    assert.equal(r.error.status, 400);
    assert.equal(r.error.code, 'invalid_credentials');
    assert.equal(r.error.message, 'Invalid login credentials');
  }
});

test('getUser and updateUser (metadata, password)', async () => {
  const { c, addr } = await signedUp();
  const { data: got } = await c.auth.getUser();
  assert.equal(got.user.email, addr);
  const upd = await c.auth.updateUser({ data: { theme: 'dark' } });
  assert.equal(upd.error, null);
  assert.equal(upd.data.user.user_metadata.theme, 'dark');
  const same = await c.auth.updateUser({ password: 'secret-pass-1' });
  assert.equal(same.error.code, 'same_password');
  const pw = await c.auth.updateUser({ password: 'new-secret-2' });
  assert.equal(pw.error, null);
  const again = await client().auth.signInWithPassword({ email: addr, password: 'new-secret-2' });
  assert.equal(again.error, null);
  const old = await client().auth.signInWithPassword({ email: addr, password: 'secret-pass-1' });
  assert.equal(old.error.code, 'invalid_credentials');
});

test('refreshSession rotates the refresh token; a racing reuse within the interval gets the current one', async () => {
  const { c, session } = await signedUp();
  const first = session.refresh_token;
  const r1 = await c.auth.refreshSession();
  assert.equal(r1.error, null);
  assert.notEqual(r1.data.session.refresh_token, first);
  assert.equal(decode(r1.data.session.access_token).session_id, decode(session.access_token).session_id);
  // Another tab presents the old token right away: it gets the current token.
  const res = await fetch(`${url}/auth/v1/token?grant_type=refresh_token`, {
    method: 'POST',
    headers: { apikey: anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ refresh_token: first }),
  });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).refresh_token, r1.data.session.refresh_token);
  const bogus = await client().auth.refreshSession({ refresh_token: 'not-a-token' });
  assert.equal(bogus.error.code, 'refresh_token_not_found');
});

test('signOut scopes: local, others, global', async () => {
  const { addr, password } = await signedUp();
  const sessions = [];
  for (let i = 0; i < 3; i++) {
    const c = client();
    const { data } = await c.auth.signInWithPassword({ email: addr, password });
    sessions.push({ c, s: data.session });
  }
  const refreshWorks = async (s) => !(await client().auth.refreshSession({ refresh_token: s.refresh_token })).error;
  // others: only session 0 survives.
  assert.equal((await sessions[0].c.auth.signOut({ scope: 'others' })).error, null);
  assert.equal(await refreshWorks(sessions[1].s), false);
  const { data: still } = await client().auth.getUser(sessions[0].s.access_token);
  assert.ok(still.user);
  // local: session 0 ends; its access token no longer works on /user.
  assert.equal((await sessions[0].c.auth.signOut({ scope: 'local' })).error, null);
  const gone = await client().auth.getUser(sessions[0].s.access_token);
  // 403 session_not_found, which supabase-js turns into AuthSessionMissingError.
  assert.equal(gone.error.name, 'AuthSessionMissingError');
  // global
  const a = client();
  await a.auth.signInWithPassword({ email: addr, password });
  const b = client();
  const { data: bd } = await b.auth.signInWithPassword({ email: addr, password });
  assert.equal((await a.auth.signOut()).error, null);
  assert.equal(await refreshWorks(bd.session), false);
});

test('logout answers 204', async () => {
  const { session } = await signedUp();
  const res = await fetch(`${url}/auth/v1/logout?scope=local`, {
    method: 'POST',
    headers: { apikey: anonKey, Authorization: `Bearer ${session.access_token}` },
  });
  assert.equal(res.status, 204);
});

test('anonymous sign-in, then converting with an address', async () => {
  const c = client();
  const { data, error } = await c.auth.signInAnonymously({ options: { data: { plan: 'free' } } });
  assert.equal(error, null);
  assert.equal(data.user.is_anonymous, true);
  assert.equal(decode(data.session.access_token).is_anonymous, true);
  assert.equal(data.user.user_metadata.plan, 'free');
  const addr = email('anon');
  const upd = await c.auth.updateUser({ email: addr });
  assert.equal(upd.error, null);
  assert.equal(upd.data.user.email, addr);
  assert.equal(upd.data.user.is_anonymous, false);
  const pw = await c.auth.updateUser({ password: 'anon-pass-1' });
  assert.equal(pw.error, null);
  const signIn = await client().auth.signInWithPassword({ email: addr, password: 'anon-pass-1' });
  assert.equal(signIn.error, null);
  assert.equal(signIn.data.user.id, data.user.id);
});

test('settings', async () => {
  const res = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } });
  const s = await res.json();
  assert.equal(s.external.email, true);
  assert.equal(s.disable_signup, false);
  assert.equal(s.mailer_autoconfirm, true);
});

test('magic link / email OTP from the captured mailbox', async () => {
  const addr = email('otp');
  const c = client();
  const { error } = await c.auth.signInWithOtp({ email: addr });
  assert.equal(error, null);
  const mail = await mailFor(addr);
  assert.match(mail.data.otp, /^\d{6}$/);
  assert.ok(mail.body.includes(mail.data.otp));
  const { data, error: vErr } = await c.auth.verifyOtp({ email: addr, token: mail.data.otp, type: 'email' });
  assert.equal(vErr, null);
  assert.equal(data.user.email, addr);
  assert.ok(data.user.email_confirmed_at);
  assert.equal(decode(data.session.access_token).amr[0].method, 'otp');
  // Used once only.
  const again = await client().auth.verifyOtp({ email: addr, token: mail.data.otp, type: 'email' });
  assert.equal(again.error.code, 'otp_expired');
  // A second magic link, followed as a browser would (GET /verify, 303).
  await client().auth.signInWithOtp({ email: addr, options: { emailRedirectTo: 'http://localhost:3000/welcome' } });
  const link = (await mailFor(addr)).data.action_link;
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const loc = new URL(res.headers.get('location'));
  assert.equal(loc.origin + loc.pathname, 'http://localhost:3000/welcome');
  const frag = new URLSearchParams(loc.hash.slice(1));
  assert.ok(frag.get('access_token'));
  assert.equal(frag.get('type'), 'magiclink');
});

test('signInWithOtp with create_user false does not reveal whether the address exists', async () => {
  const r = await client().auth.signInWithOtp({ email: email('ghost'), options: { shouldCreateUser: false } });
  assert.equal(r.error, null);
});

test('password recovery: mail, verify, set a new password', async () => {
  const { addr } = await signedUp('rec');
  const c = client();
  assert.equal((await c.auth.resetPasswordForEmail(addr)).error, null);
  const mail = await mailFor(addr);
  assert.equal(mail.kind, 'recovery');
  const { data, error } = await c.auth.verifyOtp({ token_hash: mail.data.token_hash, type: 'recovery' });
  assert.equal(error, null);
  assert.equal(data.user.email, addr);
  assert.equal((await c.auth.updateUser({ password: 'recovered-9' })).error, null);
  assert.equal((await client().auth.signInWithPassword({ email: addr, password: 'recovered-9' })).error, null);
  // Unknown addresses get the same answer.
  assert.equal((await client().auth.resetPasswordForEmail(email('nobody'))).error, null);
});

test('PKCE: magic link gives a code, exchangeCodeForSession gives the session', async () => {
  const addr = email('pkce');
  const c = pkceClient();
  const { error } = await c.auth.signInWithOtp({ email: addr, options: { emailRedirectTo: 'http://localhost:3000/cb' } });
  assert.equal(error, null);
  const link = (await mailFor(addr)).data.action_link;
  assert.match(link, /token=pkce_/);
  const res = await fetch(link, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const code = new URL(res.headers.get('location')).searchParams.get('code');
  assert.ok(code);
  const { data, error: xErr } = await c.auth.exchangeCodeForSession(code);
  assert.equal(xErr, null);
  assert.equal(data.user.email, addr);
  // A code works once.
  const again = await fetch(`${url}/auth/v1/token?grant_type=pkce`, {
    method: 'POST',
    headers: { apikey: anonKey, 'content-type': 'application/json', 'X-Supabase-Api-Version': '2024-01-01' },
    body: JSON.stringify({ auth_code: code, code_verifier: 'x'.repeat(43) }),
  });
  assert.equal(again.status, 404);
  assert.equal((await again.json()).code, 'flow_state_not_found');
});

test('admin: create, list with pagination headers, get, update, ban, delete', async () => {
  const a = admin();
  const addr = email('adm');
  const { data: created, error } = await a.auth.admin.createUser({
    email: addr, password: 'admin-made-1', email_confirm: true, user_metadata: { n: 1 }, app_metadata: { tier: 'gold' },
  });
  assert.equal(error, null);
  assert.equal(created.user.email, addr);
  assert.ok(created.user.email_confirmed_at);
  assert.equal(created.user.app_metadata.tier, 'gold');
  const dup = await a.auth.admin.createUser({ email: addr, password: 'admin-made-1' });
  assert.equal(dup.error.code, 'email_exists');

  await a.auth.admin.createUser({ email: email('adm'), password: 'admin-made-1' });
  const page = await a.auth.admin.listUsers({ page: 1, perPage: 1 });
  assert.equal(page.error, null);
  assert.equal(page.data.users.length, 1);
  assert.ok(page.data.total >= 2);
  assert.equal(page.data.nextPage, 2);
  assert.ok(page.data.lastPage >= 1);

  const got = await a.auth.admin.getUserById(created.user.id);
  assert.equal(got.data.user.id, created.user.id);
  const upd = await a.auth.admin.updateUserById(created.user.id, { user_metadata: { n: 2 }, app_metadata: { tier: 'silver' } });
  assert.equal(upd.data.user.user_metadata.n, 2);
  assert.equal(upd.data.user.app_metadata.tier, 'silver');

  const signed = await client().auth.signInWithPassword({ email: addr, password: 'admin-made-1' });
  assert.equal(signed.error, null);
  const banned = await a.auth.admin.updateUserById(created.user.id, { ban_duration: '24h' });
  assert.ok(banned.data.user.banned_until);
  const refused = await client().auth.signInWithPassword({ email: addr, password: 'admin-made-1' });
  assert.equal(refused.error.code, 'user_banned');
  const refresh = await client().auth.refreshSession({ refresh_token: signed.data.session.refresh_token });
  assert.ok(refresh.error, 'a ban ends sessions');
  await a.auth.admin.updateUserById(created.user.id, { ban_duration: 'none' });
  assert.equal((await client().auth.signInWithPassword({ email: addr, password: 'admin-made-1' })).error, null);

  const del = await a.auth.admin.deleteUser(created.user.id);
  assert.equal(del.error, null);
  const missing = await a.auth.admin.getUserById(created.user.id);
  assert.equal(missing.error.status, 404);
  assert.equal(missing.error.code, 'user_not_found');
});

test('admin: soft delete keeps the row but frees the address', async () => {
  const a = admin();
  const addr = email('soft');
  const { data } = await a.auth.admin.createUser({ email: addr, password: 'soft-pass-1', email_confirm: true });
  assert.equal((await a.auth.admin.deleteUser(data.user.id, true)).error, null);
  const got = await a.auth.admin.getUserById(data.user.id);
  assert.ok(got.data.user.deleted_at);
  assert.notEqual(got.data.user.email, addr);
  assert.equal((await client().auth.signInWithPassword({ email: addr, password: 'soft-pass-1' })).error.code, 'invalid_credentials');
  const again = await a.auth.admin.createUser({ email: addr, password: 'soft-pass-1' });
  assert.equal(again.error, null);
});

test('admin endpoints refuse the anon key and user tokens', async () => {
  const anon = await client().auth.admin.listUsers();
  assert.equal(anon.error.status, 403);
  assert.equal(anon.error.code, 'not_admin');
  const { session } = await signedUp();
  const res = await fetch(`${url}/auth/v1/admin/users`, { headers: { apikey: anonKey, Authorization: `Bearer ${session.access_token}` } });
  assert.equal(res.status, 403);
  const mail = await fetch(`${url}/auth/v1/admin/mail`, { headers: { apikey: anonKey } });
  assert.equal(mail.status, 401);
});

test('admin: generateLink and inviteUserByEmail', async () => {
  const a = admin();
  const { addr } = await signedUp('gl');
  const { data, error } = await a.auth.admin.generateLink({ type: 'magiclink', email: addr });
  assert.equal(error, null);
  assert.equal(data.user.email, addr);
  assert.equal(data.properties.verification_type, 'magiclink');
  assert.match(data.properties.email_otp, /^\d{6}$/);
  const v = await client().auth.verifyOtp({ token_hash: data.properties.hashed_token, type: 'magiclink' });
  assert.equal(v.error, null);
  assert.equal(v.data.user.email, addr);

  const inv = email('inv');
  const invited = await a.auth.admin.inviteUserByEmail(inv, { data: { team: 'x' } });
  assert.equal(invited.error, null);
  assert.ok(invited.data.user.invited_at);
  const mail = await mailFor(inv);
  assert.equal(mail.kind, 'invite');
  const acc = await client().auth.verifyOtp({ token_hash: mail.data.token_hash, type: 'invite' });
  assert.equal(acc.error, null);
  assert.ok(acc.data.user.email_confirmed_at);
});

// --- security -------------------------------------------------------------

function forge(header, payload, key) {
  const h = Buffer.from(JSON.stringify(header)).toString('base64url');
  const p = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const sig = key === null ? '' : crypto.createHmac('sha256', key).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${sig}`;
}

test('forged, expired and tampered tokens are refused with bad_jwt', async () => {
  const { session, user } = await signedUp('sec');
  const claims = decode(session.access_token);
  const now = Math.floor(Date.now() / 1000);
  const tokens = {
    algNone: forge({ alg: 'none', typ: 'JWT' }, claims, null),
    wrongKey: forge({ alg: 'HS256', typ: 'JWT' }, claims, 'not-the-secret-not-the-secret-not-the-secret'),
    expired: forge({ alg: 'HS256', typ: 'JWT' }, { ...claims, exp: now - 3600, iat: now - 7200 }, process.env.FLUXBASE_JWT_SECRET),
    tampered: (() => {
      const [h, , s] = session.access_token.split('.');
      const p = Buffer.from(JSON.stringify({ ...claims, role: 'service_role' })).toString('base64url');
      return `${h}.${p}.${s}`;
    })(),
    garbage: 'a.b.c',
  };
  for (const [name, t] of Object.entries(tokens)) {
    const { data, error } = await client().auth.getUser(t);
    assert.equal(data.user, null, name);
    assert.equal(error.status, 403, name);
    assert.equal(error.code, 'bad_jwt', name);
  }
  // The genuine token works.
  const ok = await client().auth.getUser(session.access_token);
  assert.equal(ok.data.user.id, user.id);
});

test('errors come in the current shape with the API version header, legacy without', async () => {
  const body = JSON.stringify({ email: email('x'), password: 'wrong-password' });
  const cur = await fetch(`${url}/auth/v1/token?grant_type=password`, {
    method: 'POST', headers: { apikey: anonKey, 'content-type': 'application/json', 'X-Supabase-Api-Version': '2024-01-01' }, body,
  });
  assert.equal(cur.headers.get('x-supabase-api-version'), '2024-01-01');
  assert.equal(cur.headers.get('x-sb-error-code'), 'invalid_credentials');
  assert.deepEqual(Object.keys(await cur.json()).sort().filter((k) => k !== 'request_id'), ['code', 'message']);
  const legacy = await fetch(`${url}/auth/v1/token?grant_type=password`, {
    method: 'POST', headers: { apikey: anonKey, 'content-type': 'application/json' }, body,
  });
  const l = await legacy.json();
  assert.equal(l.code, 400);
  assert.equal(l.error_code, 'invalid_credentials');
  assert.equal(l.msg, 'Invalid login credentials');
  const grant = await fetch(`${url}/auth/v1/token?grant_type=nope`, { method: 'POST', headers: { apikey: anonKey }, body: '{}' });
  assert.equal(grant.status, 400);
  const json = await fetch(`${url}/auth/v1/signup`, { method: 'POST', headers: { apikey: anonKey }, body: '{not json' });
  assert.equal((await json.json()).error_code, 'bad_json');
});

test('the last identity cannot be unlinked; OAuth providers are reported disabled', async () => {
  const { c, user } = await signedUp('idn');
  const { error } = await c.auth.unlinkIdentity(user.identities[0]);
  assert.equal(error.code, 'single_identity_not_deletable');
  const res = await fetch(`${url}/auth/v1/authorize?provider=github`, { redirect: 'manual' });
  assert.equal(res.status, 400);
});
