import assert from 'node:assert/strict';
import { get } from 'node:http';
import { before, describe, it } from 'node:test';
import { random } from '../helpers/bytes.ts';
import { testStorage } from '../helpers/storage.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes } from '../helpers/uploads.ts';

describe('GET/HEAD /v1/blobs/{digest}', () => {
  const ctx = useServer();
  let bytes: Buffer;
  let digest: string;
  let path: string;
  before(async () => {
    bytes = random(100_000);
    ({ digest } = await uploadBytes(ctx.api, bytes, { parts: 2 }));
    path = `/v1/blobs/${digest}`;
  });

  it('serves the blob publicly with strong validators and immutable caching', async () => {
    const res = await ctx.api.get(path, { token: null });
    assert.equal(res.status, 200);
    assert.ok(res.bytes.equals(bytes));
    assert.equal(res.headers.get('etag'), `"${digest}"`);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('content-type'), 'application/octet-stream');
    assert.equal(res.headers.get('content-length'), '100000');
    assert.ok(Math.abs(Date.parse(res.headers.get('last-modified')!) - Date.now()) < 60_000);
  });

  it('answers HEAD with the same headers and no body', async () => {
    const res = await ctx.api.head(path, { token: null });
    assert.equal(res.status, 200);
    assert.equal(res.bytes.length, 0);
    assert.equal(res.headers.get('content-length'), '100000');
    assert.equal(res.headers.get('etag'), `"${digest}"`);
  });

  it('revalidates with If-None-Match and If-Modified-Since (304, no body)', async () => {
    const first = await ctx.api.get(path);
    const etag = first.headers.get('etag')!;
    const lastModified = first.headers.get('last-modified')!;
    const conditions: Record<string, string>[] = [{ 'if-none-match': etag }, { 'if-none-match': `W/${etag}` }, { 'if-none-match': `"nope", ${etag}` }, { 'if-modified-since': lastModified }];
    for (const headers of conditions) {
      for (const method of ['GET', 'HEAD']) {
        const res = await ctx.api.request(method, path, { headers });
        assert.equal(res.status, 304, `${method} ${JSON.stringify(headers)}`);
        assert.equal(res.bytes.length, 0);
        assert.equal(res.headers.get('etag'), etag);
      }
    }
    assert.equal((await ctx.api.get(path, { headers: { 'if-none-match': '"other"' } })).status, 200);
    assert.equal((await ctx.api.get(path, { headers: { 'if-modified-since': 'Thu, 01 Jan 2015 00:00:00 GMT' } })).status, 200);
  });

  it('serves a range only while If-Range matches', async () => {
    const etag = (await ctx.api.head(path)).headers.get('etag')!;
    const ranged = await ctx.api.get(path, { headers: { range: 'bytes=10-19', 'if-range': etag } });
    assert.equal(ranged.status, 206);
    assert.ok(ranged.bytes.equals(bytes.subarray(10, 20)));
    const stale = await ctx.api.get(path, { headers: { range: 'bytes=10-19', 'if-range': '"sha256:stale"' } });
    assert.equal(stale.status, 200);
    assert.equal(stale.bytes.length, bytes.length);
  });

  it('HEAD answers from the metadata alone, without opening the file', async () => {
    const other = random(1234);
    const { digest: d } = await uploadBytes(ctx.api, other);
    await (await testStorage(ctx.server.dataDir)).hideBlob(d);
    const head = await ctx.api.head(`/v1/blobs/${d}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), '1234');
    const get = await ctx.api.get(`/v1/blobs/${d}`);
    assert.equal(get.status, 404, 'a missing file is a clean 404 problem, not a broken stream');
  });

  it('streams a large blob to a client that reads slowly, then to one that disconnects', async () => {
    const big = random(24 * 1024 * 1024);
    const { digest: d } = await uploadBytes(ctx.api, big, { parts: 3 });
    const res = await fetch(`${ctx.server.url}/v1/blobs/${d}`);
    const reader = res.body!.getReader();
    let received = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      received += r.value.length;
      if (received < 4 * 1024 * 1024) await new Promise((x) => setTimeout(x, 5));
    }
    assert.equal(received, big.length);
    // Real disconnects: read one chunk, then reset the socket. A write failing while the
    // server awaits its next read once crashed the process (an unhandled rejection).
    for (let i = 0; i < 10; i++) {
      await new Promise<void>((resolve, reject) => {
        get(`${ctx.server.url}/v1/blobs/${d}`, (res) => res.once('data', () => (res.destroy(), resolve()))).on('error', reject);
      });
    }
    const after = await ctx.api.get(`/v1/blobs/${d}`, { headers: { range: 'bytes=-3' } });
    assert.ok(after.bytes.equals(big.subarray(-3)), 'the server is unaffected by the abandoned download');
  });
});
