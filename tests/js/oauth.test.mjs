// OAuth / OpenID Connect sign-in with the real supabase-js, against a real
// provider on loopback (tests/harness/oidc.rs), started by tests/oauth.rs.
// Redirects are followed by hand (`redirect: 'manual'`), as a browser would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import pg from 'pg';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { url, anonKey, dbUrl } from './helpers.mjs';

const oidc = process.env.FLUXBASE_OIDC_URL;
const app = 'http://app.test/callback';
const site = 'http://localhost:3000';

function mk(flowType = 'implicit') {
  return createClient(url, anonKey, { auth: { persistSession: false, autoRefreshToken: false, flowType }, realtime: { transport: WebSocket } });
}

const unique = (p) => `${p}-${crypto.randomUUID().slice(0, 8)}@example.com`;

/** Follows redirects through Fluxbase and the provider; returns every URL visited, the last outside both. */
async function hops(start) {
  const inside = new Set([new URL(url).origin, new URL(oidc).origin]);
  const seen = [start];
  let u = start;
  for (let i = 0; i < 8; i++) {
    if (!inside.has(new URL(u).origin)) return seen;
    const r = await fetch(u, { redirect: 'manual' });
    assert.ok(r.status === 302 || r.status === 303, `${u} answered ${r.status}: ${await r.text()}`);
    u = new URL(r.headers.get('location'), u).toString();
    seen.push(u);
  }
  throw new Error(`too many redirects from ${start}`);
}
/** The provider URL `/authorize` redirects to (without going there). */
async function firstHop(start) {
  const r = await fetch(start, { redirect: 'manual' });
  assert.equal(r.status, 302, await r.text());
  return r.headers.get('location');
}
const finalUrl = async (start) => new URL((await hops(start)).at(-1));
const fragment = (u) => new URLSearchParams(u.hash.slice(1));

async function signInOAuth(c, provider, login_hint, redirectTo = app, extra = {}) {
  const { data, error } = await c.auth.signInWithOAuth({
    provider,
    options: { redirectTo, skipBrowserRedirect: true, queryParams: { login_hint, ...extra } },
  });
  assert.equal(error, null);
  return data.url;
}

async function implicitSession(c, provider, login_hint) {
  const done = await finalUrl(await signInOAuth(c, provider, login_hint));
  assert.equal(`${done.origin}${done.pathname}`, app, done.toString());
  const f = fragment(done);
  assert.ok(f.get('access_token'), done.toString());
  const { data, error } = await c.auth.setSession({ access_token: f.get('access_token'), refresh_token: f.get('refresh_token') });
  assert.equal(error, null);
  return { session: data.session, fragment: f };
}

async function sql(text, params = []) {
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    return (await db.query(text, params)).rows;
  } finally {
    await db.end();
  }
}

test('settings list the configured providers', async () => {
  const r = await fetch(`${url}/auth/v1/settings`, { headers: { apikey: anonKey } });
  const s = await r.json();
  assert.equal(s.external.github, true);
  assert.equal(s.external.google, true);
  assert.equal(s.external.acme, true);
  assert.equal(s.external.apple, false);
});

test('implicit flow with a GitHub-shaped provider: session in the fragment, identity recorded', async () => {
  const c = mk();
  const who = unique('gh');
  const start = await signInOAuth(c, 'github', who);
  const p = new URL(await firstHop(start));
  assert.equal(p.pathname, '/login/oauth/authorize');
  assert.equal(p.searchParams.get('client_id'), 'client-github');
  assert.equal(p.searchParams.get('scope'), 'user:email');
  assert.match(p.searchParams.get('state'), /^[0-9a-f-]{36}$/);
  assert.equal(p.searchParams.get('login_hint'), who, 'extra query parameters reach the provider');

  const { session, fragment: f } = await implicitSession(c, 'github', who);
  assert.equal(f.get('token_type'), 'bearer');
  assert.ok(f.get('provider_token').startsWith('at-'));
  assert.equal(session.user.email, who);
  const { data: { user } } = await c.auth.getUser();
  assert.equal(user.app_metadata.provider, 'github');
  assert.deepEqual(user.app_metadata.providers, ['github']);
  assert.equal(user.identities.length, 1);
  assert.equal(user.identities[0].provider, 'github');
  assert.equal(user.identities[0].identity_data.user_name, who.split('@')[0]);
  assert.match(user.identities[0].id, /^\d+$/, 'GitHub ids are numbers');
  assert.equal(user.user_metadata.full_name, `Name of ${who}`);
  const claims = JSON.parse(Buffer.from(session.access_token.split('.')[1], 'base64url'));
  assert.equal(claims.amr[0].method, 'oauth');

  // The same GitHub user again: the same account.
  const again = await implicitSession(mk(), 'github', who);
  assert.equal(again.session.user.id, session.user.id);
});

test('PKCE flow with Google (OIDC): ?code= then exchangeCodeForSession; the code works once', async () => {
  const c = mk('pkce');
  const who = unique('google');
  const start = await signInOAuth(c, 'google', who);
  assert.match(start, /code_challenge=/);
  const visited = await hops(start);
  const toProvider = new URL(visited[1]);
  assert.equal(toProvider.searchParams.get('scope'), 'openid email profile');
  assert.ok(toProvider.searchParams.get('nonce'), 'OIDC flows send a nonce');
  const done = new URL(visited.at(-1));
  assert.equal(`${done.origin}${done.pathname}`, app);
  const code = done.searchParams.get('code');
  assert.ok(code, done.toString());
  // The callback again (a replayed state) is refused before and after the exchange.
  const replay = async () => new URL((await fetch(visited.at(-2), { redirect: 'manual' })).headers.get('location'));
  assert.equal((await replay()).searchParams.get('error_code'), 'flow_state_already_used');
  const { data, error } = await c.auth.exchangeCodeForSession(code);
  assert.equal(error, null);
  assert.equal(data.session.user.email, who);
  assert.ok(data.session.provider_token);
  assert.equal(data.session.user.identities[0].provider, 'google');
  assert.equal(data.session.user.identities[0].identity_data.sub, `sub-${who}`);
  assert.equal((await replay()).searchParams.get('error_code'), 'bad_oauth_state');
  // The code again fails.
  const again = await fetch(`${url}/auth/v1/token?grant_type=pkce`, {
    method: 'POST',
    headers: { apikey: anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ auth_code: code, code_verifier: 'x'.repeat(43) }),
  });
  assert.equal(again.status, 404);
});

test('PKCE code with the wrong verifier is refused', async () => {
  const c = mk('pkce');
  const done = await finalUrl(await signInOAuth(c, 'acme', unique('verifier')));
  const r = await fetch(`${url}/auth/v1/token?grant_type=pkce`, {
    method: 'POST',
    headers: { apikey: anonKey, 'content-type': 'application/json', 'x-supabase-api-version': '2024-01-01' },
    body: JSON.stringify({ auth_code: done.searchParams.get('code'), code_verifier: 'y'.repeat(43) }),
  });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).code, 'bad_code_verifier');
});

test('generic OIDC provider: a verified address links to the existing password account', async () => {
  const who = unique('linkme');
  const c = mk();
  const { data: su, error } = await c.auth.signUp({ email: who, password: 'password-123' });
  assert.equal(error, null);
  const { session } = await implicitSession(mk(), 'acme', who);
  assert.equal(session.user.id, su.user.id);
  const providers = session.user.identities.map((i) => i.provider).sort();
  assert.deepEqual(providers, ['acme', 'email']);
  assert.deepEqual([...session.user.app_metadata.providers].sort(), ['acme', 'email']);
});

test('provider errors come back to redirect_to as error, error_code, error_description', async () => {
  const done = await finalUrl(await signInOAuth(mk(), 'github', 'deny'));
  assert.equal(`${done.origin}${done.pathname}`, app);
  assert.equal(done.searchParams.get('error'), 'access_denied');
  assert.equal(done.searchParams.get('error_description'), 'The user denied access');
  assert.equal(fragment(done).get('error'), 'access_denied');
});

test('an ID token with the wrong nonce in the code flow is refused', async () => {
  const done = await finalUrl(await signInOAuth(mk(), 'acme', unique('nonce'), app, { fixture_nonce: 'not-ours' }));
  assert.equal(done.searchParams.get('error_code'), 'bad_oauth_callback', done.toString());
  assert.match(done.searchParams.get('error_description'), /Nonces mismatch/);
});

test('wrong, replayed and expired states are refused', async () => {
  const bogus = new URL((await fetch(`${url}/auth/v1/callback?code=abc&state=${crypto.randomUUID()}`, { redirect: 'manual' })).headers.get('location'));
  assert.equal(bogus.origin, site);
  assert.equal(bogus.searchParams.get('error_code'), 'bad_oauth_state');
  const garbage = new URL((await fetch(`${url}/auth/v1/callback?code=abc&state=not-a-uuid`, { redirect: 'manual' })).headers.get('location'));
  assert.equal(garbage.searchParams.get('error_code'), 'bad_oauth_state');
  const missing = new URL((await fetch(`${url}/auth/v1/callback?code=abc`, { redirect: 'manual' })).headers.get('location'));
  assert.equal(missing.searchParams.get('error_code'), 'bad_oauth_callback');

  // Implicit: the state is deleted on use, so the same callback fails.
  const visited = await hops(await signInOAuth(mk(), 'github', unique('replay')));
  assert.ok(fragment(new URL(visited.at(-1))).get('access_token'));
  const again = new URL((await fetch(visited.at(-2), { redirect: 'manual' })).headers.get('location'));
  assert.equal(again.searchParams.get('error_code'), 'bad_oauth_state');
  assert.equal(again.searchParams.get('access_token'), null);

  // Expired: older than five minutes.
  const toProvider = await firstHop(await signInOAuth(mk(), 'github', unique('late')));
  const state = new URL(toProvider).searchParams.get('state');
  await sql("update auth.flow_state set created_at = now() - interval '10 minutes' where id = $1", [state]);
  const late = await finalUrl(toProvider);
  assert.equal(late.searchParams.get('error_code'), 'bad_oauth_state');
  assert.equal(late.searchParams.get('error_description'), 'OAuth state has expired');
  assert.equal((await sql('select count(*)::int as n from auth.flow_state where id = $1', [state]))[0].n, 0);
});

test('redirect_to outside the allow list falls back to the site URL', async () => {
  const done = await finalUrl(await signInOAuth(mk(), 'github', unique('evil'), 'https://evil.example/steal'));
  assert.equal(done.origin, site);
  assert.ok(fragment(done).get('access_token'));
});

test('unknown or unconfigured providers are refused', async () => {
  const r = await fetch(`${url}/auth/v1/authorize?provider=apple&redirect_to=${encodeURIComponent(app)}`, { redirect: 'manual' });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.equal(body.error_code ?? body.code, 'provider_disabled');
});

test('bad /authorize input, unreachable and oversized providers leave no flow state behind', async () => {
  const count = async () => (await sql("select count(*)::int as n from auth.flow_state where authentication_method = 'oauth'"))[0].n;
  const before = await count();
  const badPkce = await fetch(`${url}/auth/v1/authorize?provider=github&code_challenge=short&code_challenge_method=s256`, { redirect: 'manual' });
  assert.equal(badPkce.status, 400);
  const dead = await fetch(`${url}/auth/v1/authorize?provider=dead&redirect_to=${encodeURIComponent(app)}`, {
    redirect: 'manual',
    headers: { 'x-supabase-api-version': '2024-01-01' },
  });
  assert.equal(dead.status, 500);
  const body = await dead.json();
  assert.equal(body.code, 'unexpected_failure');
  assert.equal(body.message, 'Error getting user profile from external provider');
  // A provider answering with more than the size limit is refused the same way.
  const huge = await fetch(`${url}/auth/v1/authorize?provider=huge`, { redirect: 'manual' });
  assert.equal(huge.status, 500);
  const token = await mint({ email: unique('dead'), aud: 'client-dead' });
  const { error } = await mk().auth.signInWithIdToken({ provider: 'dead', token });
  assert.equal(error.status, 500);
  assert.equal(await count(), before);
});

async function mint(claims) {
  const r = await fetch(`${oidc}/fixture/id_token`, { method: 'POST', body: JSON.stringify(claims) });
  return (await r.json()).id_token;
}
const sha256hex = (s) => crypto.createHash('sha256').update(s).digest('hex');

test('signInWithIdToken: verified against the provider JWKS', async () => {
  const who = unique('idtoken');
  const raw = crypto.randomUUID();
  const token = await mint({ email: who, aud: 'client-acme', nonce: sha256hex(raw) });
  const c = mk();
  const { data, error } = await c.auth.signInWithIdToken({ provider: 'acme', token, nonce: raw });
  assert.equal(error, null);
  assert.equal(data.user.email, who);
  assert.equal(data.user.identities[0].provider, 'acme');
  // The second configured client id is an accepted audience too; no nonce on either side is fine.
  const ios = await mk().auth.signInWithIdToken({ provider: 'acme', token: await mint({ email: who, aud: 'client-acme-ios' }) });
  assert.equal(ios.error, null);
  assert.equal(ios.data.user.id, data.user.id);
});

test('signInWithIdToken refuses wrong issuer, audience, nonce, signature, expiry and unknown keys', async () => {
  const who = unique('bad');
  const cases = [
    [{ iss: 'https://evil.example' }, /issuer/],
    [{ aud: 'someone-else' }, /audience/],
    [{ exp_in: -3600 }, /expired/],
    [{ forged: true }, /signature/],
    [{ unpublished: true }, /unknown key/],
  ];
  for (const [extra, why] of cases) {
    const token = await mint({ email: who, aud: 'client-acme', ...extra });
    const { data, error } = await mk().auth.signInWithIdToken({ provider: 'acme', token });
    assert.ok(error, JSON.stringify(extra));
    assert.equal(error.status, 400, JSON.stringify(extra));
    assert.match(error.message, why);
    assert.equal(data.session, null);
  }
  const nonced = await mint({ email: who, aud: 'client-acme', nonce: sha256hex('right') });
  const wrong = await mk().auth.signInWithIdToken({ provider: 'acme', token: nonced, nonce: 'wrong' });
  assert.match(wrong.error.message, /Nonces mismatch/);
  const none = await mk().auth.signInWithIdToken({ provider: 'acme', token: nonced });
  assert.match(none.error.message, /should either both exist or not/);
  const github = await mk().auth.signInWithIdToken({ provider: 'github', token: nonced });
  assert.equal(github.error.status, 400);
  assert.equal((await sql('select count(*)::int as n from auth.users where email = $1', [who]))[0].n, 0, 'no user was made');
});

test('a rotated provider key is fetched when a token names it', async () => {
  await fetch(`${oidc}/fixture/rotate`, { method: 'POST' });
  await new Promise((r) => setTimeout(r, 1100)); // the refetch interval
  const token = await mint({ email: unique('rotated'), aud: 'client-acme' });
  const { error } = await mk().auth.signInWithIdToken({ provider: 'acme', token });
  assert.equal(error, null);
});

test('linkIdentity, getUserIdentities, unlinkIdentity', async () => {
  const c = mk();
  const who = unique('owner');
  const { error } = await c.auth.signUp({ email: who, password: 'password-123' });
  assert.equal(error, null);
  const gh = unique('owner-gh');
  const { data: link, error: linkErr } = await c.auth.linkIdentity({
    provider: 'github',
    options: { redirectTo: app, skipBrowserRedirect: true, queryParams: { login_hint: gh } },
  });
  assert.equal(linkErr, null);
  const done = await finalUrl(link.url);
  assert.ok(fragment(done).get('access_token'), done.toString());
  const { data: ids } = await c.auth.getUserIdentities();
  assert.deepEqual(ids.identities.map((i) => i.provider).sort(), ['email', 'github']);
  const ghIdentity = ids.identities.find((i) => i.provider === 'github');
  assert.equal(ghIdentity.identity_data.email, gh);

  // The same GitHub account cannot be linked to another user.
  const other = mk();
  await other.auth.signUp({ email: unique('other'), password: 'password-123' });
  const { data: l2 } = await other.auth.linkIdentity({ provider: 'github', options: { redirectTo: app, skipBrowserRedirect: true, queryParams: { login_hint: gh } } });
  const refused = await finalUrl(l2.url);
  assert.equal(refused.searchParams.get('error_code'), 'identity_already_exists');

  const { error: unErr } = await c.auth.unlinkIdentity(ghIdentity);
  assert.equal(unErr, null);
  const { data: after } = await c.auth.getUserIdentities();
  assert.deepEqual(after.identities.map((i) => i.provider), ['email']);
  const last = await c.auth.unlinkIdentity(after.identities[0]);
  assert.equal(last.error.code, 'single_identity_not_deletable');
});
