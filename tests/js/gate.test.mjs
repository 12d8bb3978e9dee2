// The API-key gate and CORS, seen from supabase-js and fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, url, anonKey } from './helpers.mjs';

test('fetch without a key gets 401 in the gateway shape', async () => {
  const res = await fetch(`${url}/rest/v1/todos`);
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.message, 'No API key found in request');
  assert.ok(body.request_id, 'request id in the body');
  assert.equal(res.headers.get('x-request-id'), body.request_id);
});

test('supabase-js requests pass the gate with the anon key', async () => {
  const { error, status } = await client().from('todos').select();
  // Anything but 401 means the gate let it through (todos does not exist: 404).
  assert.notEqual(status, 401, JSON.stringify(error));
});

test('a wrong key is refused', async () => {
  const { error, status } = await client('not-a-key').from('todos').select();
  assert.equal(status, 401);
  assert.equal(error.message, 'Invalid API key');
});

test('CORS preflight allows the headers supabase-js sends', async () => {
  const res = await fetch(`${url}/rest/v1/todos`, {
    method: 'OPTIONS',
    headers: {
      Origin: 'http://localhost:3000',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'apikey,authorization,x-client-info,content-type,prefer',
    },
  });
  assert.ok(res.ok);
  assert.equal(res.headers.get('access-control-allow-origin'), 'http://localhost:3000');
  for (const h of ['apikey', 'authorization', 'x-client-info', 'prefer']) {
    assert.ok(res.headers.get('access-control-allow-headers').includes(h), h);
  }
});

test('health answers without a key', async () => {
  const res = await fetch(`${url}/health`);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).database.state, 'up');
  void anonKey;
});
