// Image transformation through supabase-js's `transform` option:
// download(path, {transform}) -> /render/image/authenticated, getPublicUrl ->
// /render/image/public, createSignedUrl(path, s, {transform}) ->
// /render/image/sign with the transformation inside the token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { client, serviceKey, url } from './helpers.mjs';

const run = crypto.randomUUID().slice(0, 8);
const name = (b) => `js-render-${b}-${run}`;

/** A `w`×`h` RGB PNG (a gradient), built with zlib alone. */
function png(w, h) {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) raw.set([x % 256, y % 256, 99], y * (w * 3 + 1) + 1 + x * 3);
  }
  const sig = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** Width and height of a PNG or (lossless, VP8L) WebP. */
function dims(buf) {
  if (buf.subarray(1, 4).toString('ascii') === 'PNG') return [buf.readUInt32BE(16), buf.readUInt32BE(20)];
  assert.equal(buf.subarray(12, 16).toString('ascii'), 'VP8L', 'a lossless WebP');
  const b = buf.readUInt32LE(21);
  return [(b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1];
}

async function setup(isPublic) {
  const s = client(serviceKey).storage;
  const id = name(`${isPublic ? 'public' : 'private'}-${crypto.randomUUID().slice(0, 4)}`);
  assert.equal((await s.createBucket(id, { public: isPublic })).error, null);
  const r = await s.from(id).upload('img/pic.png', png(400, 200), { contentType: 'image/png', cacheControl: '60' });
  assert.equal(r.error, null, JSON.stringify(r.error));
  return s.from(id);
}

test('download with transform: cover, contain, fill, webp, quality', async () => {
  const f = await setup(false);
  const get = async (transform) => {
    const r = await f.download('img/pic.png', { transform });
    assert.equal(r.error, null, JSON.stringify(r.error));
    return Buffer.from(await r.data.arrayBuffer());
  };
  assert.deepEqual(dims(await get({ width: 100, height: 100 })), [100, 100]);
  assert.deepEqual(dims(await get({ width: 100, height: 100, resize: 'contain' })), [100, 50]);
  assert.deepEqual(dims(await get({ width: 100, height: 100, resize: 'fill' })), [100, 100]);
  assert.deepEqual(dims(await get({ width: 80 })), [80, 40]);
  assert.deepEqual(dims(await get({ width: 5000, format: 'origin' })), [400, 200], 'never enlarged');
  assert.deepEqual(dims(await get({ height: 50, format: 'webp', quality: 60 })), [100, 50]);
  // Bad options get storage-api's error.
  const bad = await f.download('img/pic.png', { transform: { width: 10, quality: 5 } });
  assert.equal(bad.error?.statusCode ?? bad.error?.status, '400');
  // No such object: 404 as for downloads.
  const missing = await f.download('img/nope.png', { transform: { width: 10 } });
  assert.equal(missing.error.statusCode, '404');
});

test('public URL with transform, and the Accept header choosing WebP', async () => {
  const f = await setup(true);
  const { data } = f.getPublicUrl('img/pic.png', { transform: { width: 50, height: 20 } });
  assert.match(data.publicUrl, /\/render\/image\/public\//);
  let r = await fetch(data.publicUrl);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'image/png');
  assert.equal(r.headers.get('cache-control'), 'max-age=60');
  assert.deepEqual(dims(Buffer.from(await r.arrayBuffer())), [50, 20]);
  r = await fetch(data.publicUrl, { headers: { accept: 'image/avif,image/webp,*/*' } });
  assert.equal(r.headers.get('content-type'), 'image/webp');
  assert.deepEqual(dims(Buffer.from(await r.arrayBuffer())), [50, 20]);
  // A private bucket's image is not public.
  const p = await setup(false);
  r = await fetch(p.getPublicUrl('img/pic.png', { transform: { width: 10 } }).data.publicUrl);
  assert.equal(r.status, 400);
  assert.equal((await r.json()).statusCode, '404');
});

test('signed URL with transform carries it in the token', async () => {
  const f = await setup(false);
  const r = await f.createSignedUrl('img/pic.png', 60, { transform: { width: 40, height: 40, resize: 'contain' } });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.match(r.data.signedUrl, /\/render\/image\/sign\//);
  let res = await fetch(r.data.signedUrl);
  assert.equal(res.status, 200);
  assert.deepEqual(dims(Buffer.from(await res.arrayBuffer())), [40, 20]);
  // The query cannot override what was signed.
  res = await fetch(`${r.data.signedUrl}&width=300`);
  assert.deepEqual(dims(Buffer.from(await res.arrayBuffer())), [40, 20]);
  // A tampered token is refused.
  res = await fetch(r.data.signedUrl.replace(/token=([^&]+)/, (_, t) => `token=${t.slice(0, -2)}xx`));
  assert.equal((await res.json()).code, 'InvalidSignature');
});

test('sources that are not images, or too many pixels, get a clear error', async () => {
  const s = client(serviceKey).storage;
  const id = name('limits');
  await s.createBucket(id);
  const f = s.from(id);
  await f.upload('text.png', 'not an image', { contentType: 'image/png' });
  let r = await fetch(`${url}/storage/v1/render/image/authenticated/${id}/text.png?width=10`, {
    headers: { apikey: serviceKey, authorization: `Bearer ${serviceKey}` },
  });
  let body = await r.json();
  assert.equal(body.statusCode, '422');
  assert.match(body.message, /Unsupported image format/);
  // A PNG header claiming 30000 x 30000 pixels (a decompression bomb) is refused before decoding.
  const bomb = png(1, 1);
  bomb.writeUInt32BE(30000, 16);
  bomb.writeUInt32BE(30000, 20);
  bomb.writeUInt32BE(zlib.crc32(bomb.subarray(12, 29)), 29);
  await f.upload('bomb.png', bomb, { contentType: 'image/png' });
  r = await fetch(`${url}/storage/v1/render/image/authenticated/${id}/bomb.png?width=10`, {
    headers: { apikey: serviceKey, authorization: `Bearer ${serviceKey}` },
  });
  body = await r.json();
  assert.equal(body.statusCode, '413');
  assert.match(body.message, /resolution is too big/);
});
