// Resumable uploads with the real tus-js-client, configured as Supabase's
// docs configure it (authorization + x-upsert headers; bucketName,
// objectName, contentType, cacheControl metadata; 6 MB chunks; data sent
// with the creation request), interrupted mid-chunk and resumed from the
// stored fingerprint. Run on the file backend (tests/js.rs) and on S3
// (tests/storage.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import pg from 'pg';
import * as tus from 'tus-js-client';
import { client, serviceKey, anonKey, url, dbUrl, userToken } from './helpers.mjs';

const run = crypto.randomUUID().slice(0, 8);
const name = (b) => `js-tus-${b}-${run}`;
const endpoint = `${url}/storage/v1/upload/resumable`;
const CHUNK = 6 * 1024 * 1024;

/** tus-js-client's URL storage kept in memory (Node's default stores nothing). */
class MemoryUrlStorage {
  constructor() {
    this.entries = new Map();
  }
  async findAllUploads() {
    return [...this.entries.values()];
  }
  async findUploadsByFingerprint(fingerprint) {
    return [...this.entries.values()].filter((u) => u.fingerprint === fingerprint);
  }
  async removeUpload(key) {
    this.entries.delete(key);
  }
  async addUpload(fingerprint, upload) {
    const key = `tus::${fingerprint}::${crypto.randomUUID()}`;
    this.entries.set(key, { ...upload, fingerprint, urlStorageKey: key });
    return key;
  }
}

/** Options as in Supabase's resumable-upload guide. */
function options(urlStorage, headers, bucketName, objectName, extra = {}) {
  return {
    endpoint,
    retryDelays: [0, 200, 500, 1000],
    headers,
    uploadDataDuringCreation: true,
    removeFingerprintOnSuccess: true,
    metadata: { bucketName, objectName, contentType: 'application/octet-stream', cacheControl: '3600' },
    chunkSize: CHUNK,
    urlStorage,
    ...extra,
  };
}

/** Starts `upload`, resuming a stored previous upload as the guide does; settles on success or error. */
function start(upload) {
  return new Promise((resolve, reject) => {
    upload.options.onSuccess = () => resolve();
    upload.options.onError = (e) => reject(e);
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    }, reject);
  });
}

async function download(bucket, path) {
  const r = await client(serviceKey).storage.from(bucket).download(path);
  assert.equal(r.error, null, JSON.stringify(r.error));
  return Buffer.from(await r.data.arrayBuffer());
}

test('tus-js-client: an upload interrupted mid-chunk resumes where it stopped', async () => {
  const bucket = name('resume');
  await client(serviceKey).storage.createBucket(bucket);
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  try {
    for (const [op, clause] of [['select', 'using'], ['insert', 'with check'], ['update', 'using']]) {
      await db.query(`create policy "${bucket}-${op}" on storage.objects for ${op} to authenticated
        ${clause} (bucket_id = '${bucket}' and (storage.foldername(name))[1] = auth.uid()::text)`);
    }
  } finally {
    await db.end();
  }
  const uid = crypto.randomUUID();
  const headers = { authorization: `Bearer ${userToken(uid)}`, 'x-upsert': 'true' };
  const data = crypto.randomBytes(2 * CHUNK + 3 * 1024 * 1024 + 17);
  const path = `${uid}/big.bin`;
  const urls = new MemoryUrlStorage();

  // First attempt: abort once the second chunk is part-way through.
  let first;
  let aborted = false;
  await new Promise((resolve, reject) => {
    first = new tus.Upload(data, {
      ...options(urls, headers, bucket, path),
      onProgress: (sent) => {
        if (!aborted && sent > CHUNK + 2 * 1024 * 1024) {
          aborted = true;
          first.abort().then(resolve, reject);
        }
      },
      onSuccess: () => reject(new Error('the first attempt should not finish')),
      onError: reject,
    });
    first.start();
  });
  assert.ok(aborted);
  assert.ok(first.url, 'the upload was created');
  assert.equal((await urls.findAllUploads()).length, 1, 'the fingerprint is stored');
  assert.equal((await client(serviceKey).storage.from(bucket).exists(path)).data, false, 'nothing visible yet');

  // The server kept what arrived: HEAD reports an offset past the first chunk.
  const head = await fetch(first.url, { method: 'HEAD', headers: { ...headers, 'tus-resumable': '1.0.0' } });
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset >= CHUNK && offset < data.length, `offset ${offset}`);

  // Second attempt: same file, same fingerprint; resumes the stored upload.
  let firstProgress = null;
  const second = new tus.Upload(data, {
    ...options(urls, headers, bucket, path),
    onProgress: (sent) => {
      if (firstProgress === null) firstProgress = sent;
    },
  });
  await start(second);
  assert.equal(second.url, first.url, 'resumed, not restarted');
  assert.ok(firstProgress > CHUNK, `resumed from ${firstProgress}`);
  assert.equal((await urls.findAllUploads()).length, 0, 'fingerprint removed on success');

  const got = await download(bucket, path);
  assert.equal(got.length, data.length);
  assert.ok(got.equals(data), 'downloaded bytes equal uploaded bytes');
  const info = await client(serviceKey).storage.from(bucket).info(path);
  assert.equal(info.data.size, data.length);
  assert.equal(info.data.cacheControl, 'max-age=3600');
  assert.ok(info.data.version, 'version is set');

  // Another user may not write under this uid.
  const other = new tus.Upload(Buffer.from('x'), options(new MemoryUrlStorage(), { authorization: `Bearer ${userToken(crypto.randomUUID())}` }, bucket, `${uid}/theirs.bin`));
  await assert.rejects(start(other), (e) => JSON.parse(e.originalResponse?.getBody() ?? '{}').statusCode === '403');
});

test('tus-js-client: a signed upload token in x-signature authorises /upload/resumable/sign', async () => {
  const bucket = name('signed');
  const s = client(serviceKey).storage;
  await s.createBucket(bucket);
  const signed = await s.from(bucket).createSignedUploadUrl('dir/signed.bin');
  assert.equal(signed.error, null, JSON.stringify(signed.error));
  const data = crypto.randomBytes(CHUNK + 1234);
  const upload = new tus.Upload(data, {
    ...options(new MemoryUrlStorage(), { 'x-signature': signed.data.token }, bucket, 'dir/signed.bin'),
    endpoint: `${endpoint}/sign`,
  });
  await start(upload);
  assert.match(upload.url, /\/storage\/v1\/upload\/resumable\/sign\/[0-9a-f-]{36}$/);
  assert.ok((await download(bucket, 'dir/signed.bin')).equals(data));

  // The token names one object: another name, or no token, is refused.
  const wrong = new tus.Upload(data, {
    ...options(new MemoryUrlStorage(), { 'x-signature': signed.data.token }, bucket, 'dir/other.bin'),
    endpoint: `${endpoint}/sign`,
  });
  await assert.rejects(start(wrong), (e) => JSON.parse(e.originalResponse?.getBody() ?? '{}').code === 'InvalidSignature');
  const none = await fetch(`${endpoint}/sign`, {
    method: 'POST',
    headers: { 'tus-resumable': '1.0.0', 'upload-length': '1', 'upload-metadata': `bucketName ${Buffer.from(bucket).toString('base64')},objectName ${Buffer.from('dir/signed.bin').toString('base64')}` },
  });
  assert.equal(none.status, 400);
  assert.equal((await none.json()).code, 'InvalidSignature');
});

test('tus: unsigned routes need a key or a JWT', async () => {
  const r = await fetch(endpoint, { method: 'POST', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1' } });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).code, 'InvalidJWT');
  const forged = await fetch(endpoint, { method: 'POST', headers: { authorization: 'Bearer not.a.jwt', 'tus-resumable': '1.0.0', 'upload-length': '1' } });
  assert.equal((await forged.json()).code, 'InvalidJWT');
  // The anon key alone still reaches it (and RLS then decides).
  const anon = await fetch(endpoint, { method: 'POST', headers: { apikey: anonKey, 'tus-resumable': '1.0.0', 'upload-length': '1', 'upload-metadata': 'bucketName bm9wZQ==,objectName eA==' } });
  assert.equal((await anon.json()).code, 'NoSuchBucket');
});
