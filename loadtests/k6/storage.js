// Storage scenarios (P11) against the Supabase-compatible /storage/v1.
// MODE: upload (POST /storage/v1/object/<bucket>/<name>, x-upsert) | download (GET the same).
// Env: BASE_URL, SERVICE_KEY, OBJECT_FILE (bytes to send), VUS, DURATION, SUMMARY_FILE.
import http from 'k6/http';
import { check } from 'k6';
import { summary } from './summary.js';

const BASE = __ENV.BASE_URL || 'http://127.0.0.1:54321';
const KEY = __ENV.SERVICE_KEY || '';
const MODE = __ENV.MODE || 'upload';
const BUCKET = 'loadtest';
const BODY = open(__ENV.OBJECT_FILE || '/dev/null', 'b');
const H = { apikey: KEY, Authorization: `Bearer ${KEY}` };

export const options = {
  vus: parseInt(__ENV.VUS || '1', 10),
  duration: __ENV.DURATION || '15s',
  discardResponseBodies: true,
  thresholds: { http_req_failed: ['rate<0.01'] }, // reported, not enforced
  summaryTrendStats: ['avg', 'med', 'p(95)', 'max'],
};

export function setup() {
  http.post(`${BASE}/storage/v1/bucket`, JSON.stringify({ id: BUCKET, name: BUCKET, public: false }), {
    headers: Object.assign({ 'Content-Type': 'application/json' }, H),
    // An existing bucket (400 with statusCode 409) is fine, and not a failed request.
    responseCallback: http.expectedStatuses({ min: 200, max: 299 }, 400),
  });
  const res = http.post(`${BASE}/storage/v1/object/${BUCKET}/fixed.bin`, BODY, {
    headers: Object.assign({ 'Content-Type': 'application/octet-stream', 'x-upsert': 'true' }, H),
  });
  check(res, { 'seed upload 2xx': (r) => r.status >= 200 && r.status < 300 });
}

export default function () {
  let res;
  if (MODE === 'upload') {
    res = http.post(`${BASE}/storage/v1/object/${BUCKET}/obj-${__VU}.bin`, BODY, {
      headers: Object.assign({ 'Content-Type': 'application/octet-stream', 'x-upsert': 'true' }, H), tags: { name: 'upload' },
    });
  } else {
    res = http.get(`${BASE}/storage/v1/object/${BUCKET}/fixed.bin`, { headers: H, tags: { name: 'download' } });
  }
  check(res, { '2xx': (r) => r.status >= 200 && r.status < 300 });
}

export function handleSummary(data) {
  return summary(data);
}
