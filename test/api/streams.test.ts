import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
    assert.match(etag, /^"[0-9a-f]{32}"$/);
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
