import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { draftVersion, publishedVersion } from '../helpers/catalog.ts';
import { testStorage } from '../helpers/storage.ts';
import { useServer } from '../helpers/suite.ts';

describe('Simple Streams feed endpoints', () => {
  const ctx = useServer();
  const images = async (headers: Record<string, string> = {}) => ctx.api.get('/streams/v1/images.json', { token: null, headers });

  it('serves an empty but valid feed before anything is published', async () => {
    const index = await ctx.api.get('/streams/v1/index.json', { token: null });
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type')!, /^application\/json/);
    assert.deepEqual(index.json, { format: 'index:1.0', index: { images: { datatype: 'image-downloads', path: 'streams/v1/images.json', format: 'products:1.0', products: [] } } });
    assert.deepEqual((await images()).json, { format: 'products:1.0', content_id: 'images', datatype: 'image-downloads', products: {} });
  });

  it('lists published, Incus-eligible artifacts only, and changes its ETag exactly when the content changes', async () => {
    const before = await images();
    await draftVersion(ctx.api, 'feedimg', '0.9');
    await publishedVersion(ctx.api, 'rawimg', '1.0', { format: 'raw', metadata: false });
    const unchanged = await images();
    assert.equal(unchanged.headers.get('etag'), before.headers.get('etag'), 'a draft and a raw-only image change nothing');
    assert.deepEqual(unchanged.json.products, {});

    await publishedVersion(ctx.api, 'feedimg', '1.0');
    const after = await images();
    assert.notEqual(after.headers.get('etag'), before.headers.get('etag'));
    assert.deepEqual(Object.keys(after.json.products), ['feedimg:1.0:debian:amd64:default']);
    const index = await ctx.api.get('/streams/v1/index.json');
    assert.deepEqual(index.json.index.images.products, ['feedimg:1.0:debian:amd64:default']);
  });

  it('answers conditional requests with 304', async () => {
    const current = await images();
    const etag = current.headers.get('etag')!;
    assert.match(etag, /^"[0-9a-f]{32}(-br|-gzip)?"$/);
    assert.equal(current.headers.get('cache-control'), 'public, no-cache');
    assert.equal((await images({ 'if-none-match': etag })).status, 304);
    assert.equal((await images({ 'if-modified-since': current.headers.get('last-modified')! })).status, 304);
    assert.equal((await images({ 'if-none-match': '"stale"' })).status, 200);
  });

  it('is rebuilt when an alias is created, moved or deleted', async () => {
    await publishedVersion(ctx.api, 'feedimg', '2.0');
    const aliases = async () => Object.fromEntries(Object.entries((await images()).json.products as Record<string, { aliases: string }>).map(([k, p]) => [k, p.aliases]));
    await ctx.api.put('/v1/images/feedimg/aliases/latest', { json: { version: '2.0' } });
    assert.equal((await aliases())['feedimg:2.0:debian:amd64:default'], 'feedimg,feedimg/2.0,feedimg/latest');
    await ctx.api.put('/v1/images/feedimg/aliases/latest', { json: { version: '1.0' } });
    assert.equal((await aliases())['feedimg:1.0:debian:amd64:default'], 'feedimg,feedimg/1.0,feedimg/latest');
    assert.equal((await aliases())['feedimg:2.0:debian:amd64:default'], 'feedimg/2.0');
    await ctx.api.delete('/v1/images/feedimg/aliases/latest');
    assert.equal((await aliases())['feedimg:1.0:debian:amd64:default'], 'feedimg/1.0');
  });

  it('is built from the catalog alone, without reading blob bytes', async () => {
    const served = await images();
    await (await testStorage(ctx.server.dataDir)).dropAllBlobs();
    await ctx.api.put('/v1/images/feedimg/aliases/edge', { json: { version: '2.0' } });
    const rebuilt = await images();
    assert.equal(rebuilt.status, 200);
    assert.notEqual(rebuilt.headers.get('etag'), served.headers.get('etag'), 'rebuilt after the alias change, with no blob on disk');
    assert.equal(Object.keys(rebuilt.json.products).length, 2);
  });
});

describe('Simple Streams feed encodings', () => {
  const ctx = useServer();
  /** A GET whose body is left as sent (fetch would decode it). */
  const raw = (path: string, headers: Record<string, string>) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
      httpGet(`${ctx.server.url}${path}`, { headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) })).on('error', reject);
      }).on('error', reject);
    });

  it('sends the feed pre-compressed as the client accepts, each coding with its own strong ETag, and 304s per coding', async () => {
    await publishedVersion(ctx.api, 'zipped', '1.0');
    for (const path of ['/streams/v1/images.json', '/streams/v1/index.json']) {
      const plain = await raw(path, {});
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(plain.headers.vary, 'accept-encoding');
      const body = plain.body.toString();
      assert.ok(JSON.parse(body));
      const cases: [string, 'br' | 'gzip' | undefined][] = [
        ['br', 'br'],
        ['gzip', 'gzip'],
        ['gzip, deflate, br', 'br'],
        ['gzip;q=1.0, br;q=0.5', 'gzip'],
        ['*', 'br'],
        ['identity', undefined],
        ['br;q=0, gzip;q=0', undefined],
        ['deflate', undefined],
      ];
      for (const [accept, coding] of cases) {
        const res = await raw(path, { 'accept-encoding': accept });
        assert.equal(res.headers['content-encoding'], coding, `${path} ${accept}`);
        const decoded = coding === 'br' ? brotliDecompressSync(res.body) : coding === 'gzip' ? gunzipSync(res.body) : res.body;
        assert.equal(decoded.toString(), body, `${path} ${accept}: the same document`);
        const etag = res.headers.etag as string;
        assert.equal(etag, coding ? `${(plain.headers.etag as string).slice(0, -1)}-${coding}"` : plain.headers.etag);
        assert.equal((await raw(path, { 'accept-encoding': accept, 'if-none-match': etag })).status, 304, `${path} ${accept}: 304 for its own ETag`);
      }
      assert.ok((await raw(path, { 'accept-encoding': 'br' })).body.length < plain.body.length || plain.body.length < 200, 'compressed is smaller');
      assert.equal((await raw(path, { 'accept-encoding': 'br', 'if-none-match': plain.headers.etag as string })).status, 200, 'another coding\'s ETag does not match');
    }
  });
});
