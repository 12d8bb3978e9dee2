// Storage through the real supabase-js client (file backend): every call of
// the storage client, RLS by caller, limits, signed URLs, concurrency.
// Bucket names are unique to this file (node --test runs files in parallel
// against one server).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import pg from 'pg';
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { client, serviceKey, anonKey, url, dbUrl, userToken } from './helpers.mjs';

const run = crypto.randomUUID().slice(0, 8);
const name = (b) => `js-${b}-${run}`;

function userClient(sub) {
  return createClient(url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket },
    global: { headers: { Authorization: `Bearer ${userToken(sub)}` } },
  });
}

const service = () => client(serviceKey).storage;

test('buckets: create, get, list, update, empty, delete', async () => {
  const s = service();
  const id = name('buckets');
  let r = await s.createBucket(id, { public: false, fileSizeLimit: '1MB', allowedMimeTypes: ['text/plain'] });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.deepEqual(r.data, { name: id });
  r = await s.createBucket(id);
  assert.equal(r.error.statusCode, '409');
  r = await s.getBucket(id);
  assert.equal(r.data.id, id);
  assert.equal(r.data.file_size_limit, 1 << 20);
  assert.deepEqual(r.data.allowed_mime_types, ['text/plain']);
  r = await s.listBuckets();
  assert.ok(r.data.some((b) => b.id === id));
  r = await s.updateBucket(id, { public: true, fileSizeLimit: null, allowedMimeTypes: null });
  assert.equal(r.error, null, JSON.stringify(r.error));
  r = await s.getBucket(id);
  assert.equal(r.data.public, true);
  assert.equal(r.data.file_size_limit, null);
  await s.from(id).upload('x.txt', 'x');
  r = await s.deleteBucket(id);
  assert.equal(r.error.statusCode, '409', 'non-empty bucket');
  r = await s.emptyBucket(id);
  assert.equal(r.error, null);
  r = await s.deleteBucket(id);
  assert.deepEqual(r.data, { message: 'Successfully deleted' });
  r = await s.getBucket(id);
  assert.equal(r.error.statusCode, '404');
});

test('objects: upload forms, download, info, exists, list, move, copy, remove', async () => {
  const s = service();
  const id = name('objects');
  await s.createBucket(id);
  const f = s.from(id);

  // Blob => multipart form with an empty-named file part.
  let r = await f.upload('folder/blob.txt', new Blob(['from a blob'], { type: 'text/plain' }), { metadata: { a: 1 } });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.data.path, 'folder/blob.txt');
  assert.equal(r.data.fullPath, `${id}/folder/blob.txt`);
  assert.ok(r.data.id);
  // Buffer and string => raw bodies.
  r = await f.upload('folder/buffer.bin', Buffer.from([1, 2, 3]), { contentType: 'application/octet-stream' });
  assert.equal(r.error, null, JSON.stringify(r.error));
  r = await f.upload('/folder//string.txt/', 'a string');
  assert.equal(r.data.path, 'folder/string.txt');

  // Duplicate without upsert; upsert; update.
  r = await f.upload('folder/string.txt', 'again');
  assert.equal(r.error.statusCode, '409');
  assert.equal(r.error.message, 'The resource already exists');
  r = await f.upload('folder/string.txt', 'upserted', { upsert: true });
  assert.equal(r.error, null);
  r = await f.update('folder/string.txt', 'updated');
  assert.equal(r.error, null);

  r = await f.download('folder/string.txt');
  assert.equal(await r.data.text(), 'updated');
  r = await f.download('folder/blob.txt');
  assert.equal(await r.data.text(), 'from a blob');
  assert.equal(r.data.type, 'text/plain');
  r = await f.download('folder/buffer.bin');
  assert.deepEqual([...new Uint8Array(await r.data.arrayBuffer())], [1, 2, 3]);

  r = await f.info('folder/blob.txt');
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.data.size, 11);
  assert.equal(r.data.contentType, 'text/plain');
  assert.equal(r.data.cacheControl, 'max-age=3600');
  assert.deepEqual(r.data.metadata, { a: 1 });
  assert.equal((await f.exists('folder/blob.txt')).data, true);
  assert.equal((await f.exists('folder/nope.txt')).data, false);
  // storage-js <= 2.7 used HEAD.
  const head = await fetch(`${url}/storage/v1/object/${id}/folder/blob.txt`, {
    method: 'HEAD', headers: { apikey: serviceKey, Authorization: `Bearer ${serviceKey}` },
  });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), '11');

  r = await f.list();
  assert.deepEqual(r.data.map((e) => e.name), ['folder']);
  assert.equal(r.data[0].id, null);
  r = await f.list('folder', { limit: 2, offset: 1, sortBy: { column: 'name', order: 'asc' } });
  assert.deepEqual(r.data.map((e) => e.name), ['buffer.bin', 'string.txt']);
  assert.equal(r.data[1].metadata.size, 7);
  assert.equal(r.data[1].metadata.mimetype, 'text/plain;charset=UTF-8');
  r = await f.list('folder', { search: 'blo' });
  assert.deepEqual(r.data.map((e) => e.name), ['blob.txt']);
  r = await f.list('folder', { sortBy: { column: 'created_at', order: 'desc' } });
  assert.equal(r.data.length, 3);

  // listV2: keyset pages, flat or by folder.
  r = await f.listV2({ prefix: 'folder/', limit: 2 });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.deepEqual(r.data.objects.map((o) => o.key), ['folder/blob.txt', 'folder/buffer.bin']);
  assert.equal(r.data.hasNext, true);
  const page2 = await f.listV2({ prefix: 'folder/', limit: 2, cursor: r.data.nextCursor });
  assert.deepEqual(page2.data.objects.map((o) => o.name), ['string.txt']);
  assert.equal(page2.data.hasNext, false);
  r = await f.listV2({ with_delimiter: true });
  assert.deepEqual(r.data.folders, [{ name: 'folder', key: 'folder/' }]);
  assert.deepEqual(r.data.objects, []);
  r = await f.listV2({ prefix: 'folder/', sortBy: { column: 'created_at', order: 'desc' }, limit: 1 });
  assert.equal(r.data.objects.length, 1);
  const rest = await f.listV2({ prefix: 'folder/', sortBy: { column: 'created_at', order: 'desc' }, limit: 5, cursor: r.data.nextCursor });
  assert.equal(rest.data.objects.length, 2);
  assert.ok(!rest.data.objects.some((o) => o.key === r.data.objects[0].key));

  r = await f.copy('folder/blob.txt', 'copies/blob.txt');
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.data.path, `${id}/copies/blob.txt`);
  r = await f.move('copies/blob.txt', 'moved/blob.txt');
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(await (await f.download('moved/blob.txt')).data.text(), 'from a blob');
  assert.equal((await f.exists('copies/blob.txt')).data, false);
  r = await f.move('nope', 'x');
  assert.equal(r.error.statusCode, '404');

  r = await f.remove(['moved/blob.txt', 'folder/buffer.bin', 'not-there']);
  assert.equal(r.error, null);
  assert.deepEqual(r.data.map((o) => o.name).sort(), ['folder/buffer.bin', 'moved/blob.txt']);
  r = await f.download('moved/blob.txt');
  assert.equal(r.error.statusCode, '404');
});

test('public and signed URLs', async () => {
  const s = service();
  const pub = name('public');
  const priv = name('private');
  await s.createBucket(pub, { public: true });
  await s.createBucket(priv, { public: false });
  await s.from(pub).upload('p/a b.txt', 'public bytes', { contentType: 'text/plain' });
  await s.from(priv).upload('p/secret.txt', 'secret bytes', { contentType: 'text/plain' });

  const publicUrl = s.from(pub).getPublicUrl('p/a b.txt').data.publicUrl;
  let res = await fetch(publicUrl);
  assert.equal(await res.text(), 'public bytes');
  res = await fetch(s.from(pub).getPublicUrl('p/a b.txt', { download: true }).data.publicUrl);
  assert.match(res.headers.get('content-disposition'), /attachment; filename="a b.txt"/);
  res = await fetch(s.from(priv).getPublicUrl('p/secret.txt').data.publicUrl);
  assert.equal(res.status, 400, 'private buckets are not public');

  let r = await s.from(priv).createSignedUrl('p/secret.txt', 60);
  assert.equal(r.error, null, JSON.stringify(r.error));
  res = await fetch(r.data.signedUrl);
  assert.equal(await res.text(), 'secret bytes');
  r = await s.from(priv).createSignedUrl('p/secret.txt', 60, { download: 'given.txt' });
  res = await fetch(r.data.signedUrl);
  assert.match(res.headers.get('content-disposition'), /filename="given.txt"/);
  r = await s.from(priv).createSignedUrls(['p/secret.txt', 'p/none.txt'], 60);
  assert.equal(r.data.length, 2);
  assert.ok(r.data[0].signedUrl);
  assert.equal(r.data[1].signedUrl, null);
  assert.ok(r.data[1].error);
  r = await s.from(priv).createSignedUrl('p/none.txt', 60);
  assert.equal(r.error.statusCode, '404');

  // Expiry.
  r = await s.from(priv).createSignedUrl('p/secret.txt', 1);
  await new Promise((ok) => setTimeout(ok, 2100));
  res = await fetch(r.data.signedUrl);
  assert.equal(res.status, 400);
  assert.match((await res.json()).message, /expired/);

  // Signed upload URL.
  r = await s.from(priv).createSignedUploadUrl('up/file.txt');
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.ok(r.data.token);
  const up = await client().storage.from(priv).uploadToSignedUrl('up/file.txt', r.data.token, 'uploaded with a token');
  assert.equal(up.error, null, JSON.stringify(up.error));
  assert.equal(up.data.fullPath, `${priv}/up/file.txt`);
  assert.equal(await (await s.from(priv).download('up/file.txt')).data.text(), 'uploaded with a token');
  const again = await client().storage.from(priv).uploadToSignedUrl('other.txt', r.data.token, 'x');
  assert.ok(again.error, 'a token is bound to its path');
});

test('size and MIME limits', async () => {
  const s = service();
  const id = name('limits');
  await s.createBucket(id, { fileSizeLimit: 1024, allowedMimeTypes: ['image/*'] });
  const f = s.from(id);
  let r = await f.upload('big.png', Buffer.alloc(2048), { contentType: 'image/png' });
  assert.equal(r.error.statusCode, '413');
  r = await f.upload('doc.txt', 'text', { contentType: 'text/plain' });
  assert.equal(r.error.statusCode, '415');
  r = await f.upload('ok.png', Buffer.alloc(100), { contentType: 'image/png' });
  assert.equal(r.error, null, JSON.stringify(r.error));
  r = await f.list();
  assert.deepEqual(r.data.map((e) => e.name), ['ok.png']);
});

test('RLS: users read and write only under their own uid', async () => {
  const id = name('rls');
  await service().createBucket(id);
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    for (const [op, clause] of [['select', 'using'], ['insert', 'with check'], ['update', 'using'], ['delete', 'using']]) {
      await db.query(`create policy "${id}-${op}" on storage.objects for ${op} to authenticated
        ${clause} (bucket_id = '${id}' and (storage.foldername(name))[1] = auth.uid()::text)`);
    }
  } finally {
    await db.end();
  }
  const a = crypto.randomUUID();
  const b = crypto.randomUUID();
  const ua = userClient(a).storage.from(id);
  const ub = userClient(b).storage.from(id);
  let r = await ua.upload(`${a}/note.txt`, 'mine');
  assert.equal(r.error, null, JSON.stringify(r.error));
  r = await ua.upload(`${b}/note.txt`, 'not mine');
  assert.equal(r.error.statusCode, '403');
  r = await ub.download(`${a}/note.txt`);
  assert.equal(r.error.statusCode, '404');
  r = await ub.list(a);
  assert.deepEqual(r.data, []);
  r = await ua.list(a);
  assert.deepEqual(r.data.map((e) => e.name), ['note.txt']);
  r = await ub.remove([`${a}/note.txt`]);
  assert.deepEqual(r.data, []);
  r = await ua.createSignedUrl(`${a}/note.txt`, 60);
  assert.equal(r.error, null);
  r = await ub.createSignedUrl(`${a}/note.txt`, 60);
  assert.equal(r.error.statusCode, '404');
  r = await client().storage.from(id).upload(`${a}/anon.txt`, 'anon');
  assert.equal(r.error.statusCode, '403');
  r = await ua.remove([`${a}/note.txt`]);
  assert.equal(r.data.length, 1);
});

test('concurrent uploads to one key: one wins without upsert, all succeed with it', async () => {
  const s = service();
  const id = name('race');
  await s.createBucket(id);
  const f = s.from(id);
  const plain = await Promise.all([...Array(6)].map((_, i) => f.upload('once.txt', `v${i}`)));
  assert.equal(plain.filter((r) => r.error === null).length, 1);
  assert.ok(plain.filter((r) => r.error).every((r) => r.error.statusCode === '409'));
  const upserts = await Promise.all([...Array(6)].map((_, i) => f.upload('many.txt', `u${i}`, { upsert: true })));
  assert.ok(upserts.every((r) => r.error === null));
  const text = await (await f.download('many.txt')).data.text();
  assert.match(text, /^u[0-5]$/);
});

test('version: every write names a new one, info returns it, move keeps the bytes', async () => {
  const s = service();
  const id = name('version');
  await s.createBucket(id);
  const f = s.from(id);
  const version = async (p) => {
    const r = await f.info(p);
    assert.equal(r.error, null, JSON.stringify(r.error));
    assert.match(r.data.version, /^[0-9a-f-]{36}$/);
    return r.data.version;
  };
  await f.upload('v.txt', 'one');
  const v1 = await version('v.txt');
  await f.upload('v.txt', 'two', { upsert: true });
  const v2 = await version('v.txt');
  await f.update('v.txt', 'three');
  const v3 = await version('v.txt');
  await f.copy('v.txt', 'copy.txt');
  const vc = await version('copy.txt');
  assert.equal(new Set([v1, v2, v3, vc]).size, 4);
  const { data } = await s.from(id).listV2({ prefix: '' });
  assert.equal(data.objects.find((o) => o.name === 'v.txt')?.version, v3);
  await f.move('copy.txt', 'moved.txt');
  assert.equal(await (await f.download('moved.txt')).data.text(), 'three');
});
