import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { before, describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes, waitForUpload } from '../helpers/uploads.ts';

const octets = { 'content-type': 'application/octet-stream' };
const digest = `sha256:${'0'.repeat(64)}`;

describe('hostile input gets a 4xx problem, never a 500', () => {
  const ctx = useServer({ env: { IMGSRV_MAX_JSON_BODY: '4096' } });
  let open: string;
  before(async () => {
    open = (await ctx.api.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: 100 })).json.id;
  });

  it('rejects malformed digests and sizes when beginning', async () => {
    for (const expected_digest of ['sha256:abc', `SHA256:${'a'.repeat(64)}`, `sha256:${'A'.repeat(64)}`, `sha512:${'a'.repeat(64)}`, `${'a'.repeat(64)}`, '', 42]) {
      const res = await ctx.api.post('/v1/uploads', { expected_digest, expected_size_bytes: 1 });
      assert.equal(res.status, 400, String(expected_digest));
      assert.match(res.json.detail, /expected_digest/);
    }
    for (const expected_size_bytes of [-1, 1.5, '10', null, 2 ** 60]) {
      const res = await ctx.api.post('/v1/uploads', { expected_digest: digest, expected_size_bytes });
      assert.equal(res.status, 400, String(expected_size_bytes));
      assert.match(res.json.detail, /expected_size_bytes/);
    }
  });

  it('names missing and unknown fields', async () => {
    const missing = await ctx.api.post('/v1/uploads', { expected_digest: digest });
    assert.equal(missing.status, 400);
    assert.match(missing.json.detail, /missing required field "expected_size_bytes"/);
    const unknown = await ctx.api.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: 1, colour: 'red' });
    assert.equal(unknown.status, 400);
    assert.match(unknown.json.detail, /unknown field "colour"/);
    const empty = await ctx.api.post('/v1/uploads', undefined, { headers: { 'content-type': 'application/json' } });
    assert.equal(empty.status, 400);
    const array = await ctx.api.request('POST', '/v1/uploads', { body: '[]', headers: { 'content-type': 'application/json' } });
    assert.equal(array.status, 400);
  });

  it('rejects malformed, oversized and wrongly typed bodies', async () => {
    const malformed = await ctx.api.request('POST', '/v1/uploads', { body: '{"expected_digest": ', headers: { 'content-type': 'application/json' } });
    assert.equal(malformed.status, 400);
    assert.match(malformed.json.detail, /not valid JSON/);
    const huge = await ctx.api.request('POST', '/v1/uploads', { body: JSON.stringify({ expected_digest: digest, expected_size_bytes: 1, filename_hint: 'x'.repeat(10_000) }), headers: { 'content-type': 'application/json' } });
    assert.equal(huge.status, 413);
    const text = await ctx.api.request('POST', '/v1/uploads', { body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.status, 415);
    assert.match(text.json.detail, /application\/json/);
    const none = await ctx.api.request('POST', '/v1/uploads', { body: JSON.stringify({ expected_digest: digest, expected_size_bytes: 1 }), headers: { 'content-type': '' } });
    assert.equal(none.status, 415);
    const charset = await ctx.api.request('POST', '/v1/uploads', { body: JSON.stringify({ expected_digest: digest, expected_size_bytes: 1 }), headers: { 'content-type': 'application/json; charset=utf-8' } });
    assert.equal(charset.status, 201);
  });

  it('refuses text with U+0000 with 400, whatever the database', async () => {
    const res = await ctx.api.post('/v1/images', { name: 'nul-text', description: 'before\u0000after' });
    assert.equal(res.status, 400, JSON.stringify(res.json));
    assert.match(res.json.detail, /U\+0000/);
  });

  it('rejects part numbers outside 1..10000 and non-numbers', async () => {
    for (const n of ['0', '10001', '-1', '1.5', 'one', '99999999999999999999']) {
      const res = await ctx.api.put(`/v1/uploads/${open}/parts/${n}`, { body: random(10), headers: octets });
      assert.equal(res.status, 400, n);
      assert.match(res.json.detail, /part_number/);
    }
    assert.equal((await ctx.api.put(`/v1/uploads/${open}/parts/10000`, { body: random(10), headers: octets })).status, 200);
  });

  it('requires application/octet-stream for parts', async () => {
    for (const type of ['application/json', 'text/plain', '']) {
      const res = await ctx.api.put(`/v1/uploads/${open}/parts/1`, { body: '{}', headers: { 'content-type': type } });
      assert.equal(res.status, 415, type);
    }
  });

  it('refuses a part larger than the session expects', async () => {
    const res = await ctx.api.put(`/v1/uploads/${open}/parts/2`, { body: random(101), headers: octets });
    assert.equal(res.status, 413);
    assert.match(res.json.detail, /at most 90 more are accepted/, 'part 10000 already holds 10 of the 100 bytes');
    // Without a Content-Length the limit is enforced while streaming.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${ctx.server.url}/v1/uploads/${open}/parts/3`, { method: 'PUT', headers: { ...octets, authorization: `Bearer ${ctx.server.token}`, 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.write(random(60));
      req.end(random(60));
    });
    assert.equal(chunked.status, 413);
    assert.equal(JSON.parse(chunked.body).code, 'part_too_large');
    const held = (await ctx.api.get(`/v1/uploads/${open}`)).json.received_parts.map((p: { part_number: number }) => p.part_number);
    assert.ok(!held.includes(2) && !held.includes(3));
  });

  it('never lets a session hold more bytes than it expects', async () => {
    const id = (await ctx.api.post('/v1/uploads', { expected_digest: sha256(random(4)), expected_size_bytes: 100 })).json.id;
    assert.equal((await ctx.api.put(`/v1/uploads/${id}/parts/1`, { body: random(60), headers: octets })).status, 200);
    const over = await ctx.api.put(`/v1/uploads/${id}/parts/2`, { body: random(41), headers: octets });
    assert.equal(over.status, 413);
    assert.match(over.json.detail, /at most 40 more are accepted/);
    assert.equal((await ctx.api.put(`/v1/uploads/${id}/parts/2`, { body: random(40), headers: octets })).status, 200);
    assert.equal((await ctx.api.put(`/v1/uploads/${id}/parts/1`, { body: random(60), headers: octets })).status, 200, 'a re-sent part replaces its own bytes');
  });

  it('answers requests the HTTP parser rejects with a problem', async () => {
    const { connect } = await import('node:net');
    const { port } = new URL(ctx.server.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write(`PUT /v1/uploads/${open}/parts/1 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`));
      let text = '';
      socket.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text)).on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, /content-type: application\/problem\+json/i);
    assert.equal(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).status, 400);
  });

  it('answers 404 for unknown sessions and 400 for ids that are not UUIDs, including traversal attempts', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    assert.equal((await ctx.api.get(`/v1/uploads/${unknown}`)).status, 404);
    assert.equal((await ctx.api.put(`/v1/uploads/${unknown}/parts/1`, { body: random(1), headers: octets })).status, 404);
    assert.equal((await ctx.api.post(`/v1/uploads/${unknown}/complete`, { parts: [{ number: 1, etag: 'x', size_bytes: 1 }] })).status, 404);
    assert.equal((await ctx.api.post(`/v1/uploads/${unknown}/abort`)).status, 404);
    for (const id of ['..%2F..%2Fetc%2Fpasswd', 'abc', `${unknown}%00`]) {
      const res = await ctx.api.get(`/v1/uploads/${id}`);
      assert.equal(res.status, 400, id);
      assert.match(res.json.detail, /upload_id/);
    }
    for (const d of ['..%2F..%2Fetc%2Fpasswd', 'sha256:..%2F..%2Fx', `sha256:${'g'.repeat(64)}`]) {
      assert.equal((await ctx.api.get(`/v1/blobs/${d}`)).status, 400, d);
      assert.equal((await ctx.api.head(`/v1/blobs/${d}`)).status, 400, d);
    }
    assert.equal((await ctx.api.get(`/v1/blobs/${sha256(random(3))}`)).status, 404);
    // Sent raw: fetch would normalise dot segments before they reach the ctx.server.
    for (const path of ['/v1/uploads/%2e%2e', '/v1/uploads/..%2f..%2fdata', '/v1/blobs/sha256:%2e%2e%2f%2e%2e%2fmetadata.sqlite', '/v1/blobs/../../etc/passwd']) {
      const status = await new Promise<number>((resolve, reject) =>
        httpRequest(`${ctx.server.url}${path}`, { method: 'GET' }, (res) => resolve(res.resume().statusCode!)).on('error', reject).end(),
      );
      assert.ok(status === 400 || status === 404, `${path}: ${status}`);
    }
  });

  it('checks the part list of complete against what the server holds', async () => {
    const bytes = random(300);
    const begin = await ctx.api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: 300 });
    const id = begin.json.id;
    const noParts = await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: [{ number: 1, etag: 'x', size_bytes: 300 }] });
    assert.equal(noParts.status, 412, 'nothing was uploaded yet');
    const etags: string[] = [];
    for (const n of [1, 2, 3]) etags.push((await ctx.api.put(`/v1/uploads/${id}/parts/${n}`, { body: bytes.subarray((n - 1) * 100, n * 100), headers: octets })).json.etag);
    const list = (over: Record<number, object> = {}) => ({ parts: [1, 2, 3].map((n) => ({ number: n, etag: etags[n - 1], size_bytes: 100, ...over[n] })) });
    const cases: [unknown, number, RegExp][] = [
      [{ parts: [] }, 400, /parts/],
      [{}, 400, /missing required field "parts"/],
      [{ parts: [{ number: 0, etag: 'x', size_bytes: 1 }] }, 400, /parts/],
      [{ parts: [{ number: 1, etag: '', size_bytes: 1 }] }, 400, /etag/],
      [list({ 2: { etag: 'deadbeef' } }), 412, /part 2: etag/],
      [list({ 3: { size_bytes: 99 } }), 412, /part 3: size_bytes 99/],
      [{ parts: list().parts.reverse() }, 400, /ascending/],
      [{ parts: [...list().parts, { number: 4, etag: 'x', size_bytes: 1 }] }, 412, /part 4 has not been uploaded/],
      [{ parts: list().parts.slice(0, 2) }, 400, /hold 200 bytes but upload .* expects 300/],
    ];
    for (const [body, status, detail] of cases) {
      const res = await ctx.api.post(`/v1/uploads/${id}/complete`, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(res.json.detail, detail);
    }
    assert.equal((await ctx.api.get(`/v1/uploads/${id}`)).json.state, 'uploading', 'no rejected complete changed the session');
    assert.equal((await ctx.api.post(`/v1/uploads/${id}/complete`, list())).status, 200);
    const late = await ctx.api.put(`/v1/uploads/${id}/parts/4`, { body: random(1), headers: octets });
    assert.equal(late.status, 412, 'no parts after complete');
    assert.match(late.json.detail, /parts are accepted only while it is created or uploading/);
    assert.equal((await waitForUpload(ctx.api, id)).state, 'ready');
  });

  it('fails on malformed Range headers with 416, and keeps the blob', async () => {
    const { digest: d } = await uploadBytes(ctx.api, random(1000));
    for (const range of ['bytes=5-1', 'bytes=0-1,3-4', 'bytes=x-y', 'lines=1-2', 'bytes=1000-', 'bytes=-0', 'bytes=99999999999999999999-', `bytes=0-${'9'.repeat(300)}`]) {
      const res = await ctx.api.get(`/v1/blobs/${d}`, { headers: { range } });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers.get('content-range'), 'bytes */1000');
    }
    assert.equal((await ctx.api.get(`/v1/blobs/${d}`)).bytes.length, 1000);
  });

  it('answers unknown routes with 404 and wrong methods with 405 and Allow', async () => {
    const missing = await ctx.api.get('/v1/nothing-here', { token: null });
    assert.equal(missing.status, 404);
    const wrong = await ctx.api.request('DELETE', '/v1/uploads', { token: null });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'POST');
    const patch = await ctx.api.request('PATCH', `/v1/blobs/${digest}`, { token: null });
    assert.equal(patch.status, 405);
    assert.equal(patch.headers.get('allow'), 'GET, HEAD');
  });
});
