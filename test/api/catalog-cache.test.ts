import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publishedVersion } from '../helpers/catalog.ts';
import { useApp } from '../helpers/app.ts';

/** The catalog's read methods, as the store's instrumentation logs each call (debug). */
const CATALOG_READS = new Set(['getImage', 'getVersion', 'getVersionById', 'getAlias', 'listArtifacts', 'listAttachments', 'listPublishedVersions', 'listPublishedImages', 'catalogRevision']);

describe('catalog reads from the revision cache', () => {
  const ctx = useApp({ logLevel: 'debug' });
  /** Store calls of catalog reads logged while `fn` ran. */
  const readsDuring = async (fn: () => Promise<void>) => {
    const from = ctx.logged.length;
    await fn();
    return ctx.logged
      .slice(from)
      .map((line) => JSON.parse(line) as { component?: string; method?: string; msg?: string })
      .filter((l) => l.msg === 'storage call' && l.component === 'metadata' && CATALOG_READS.has(l.method ?? ''))
      .map((l) => l.method);
  };
  const get = async (path: string) => {
    const res = await ctx.api.get(path, { token: null });
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.json)}`);
    return res.json;
  };
  const PATHS = ['/v1/images/cached/refs/stable', '/v1/images/cached/versions/1.0', '/v1/images', '/v1/images/cached', '/v1/images/cached/versions'];

  it('answers published reads with one query each (the revision) while nothing changed', async () => {
    await publishedVersion(ctx.api, 'cached', '1.0');
    assert.equal((await ctx.api.put('/v1/images/cached/aliases/stable', { json: { version: '1.0' } })).status, 200);
    for (const path of PATHS) await get(path);
    for (const path of PATHS) {
      const reads = await readsDuring(async () => {
        for (let i = 0; i < 3; i++) await get(path);
      });
      assert.deepEqual(reads, ['catalogRevision', 'catalogRevision', 'catalogRevision'], `${path}: ${reads.join(', ')}`);
    }
  });

  it('never serves a moved alias or a new version stale', async () => {
    await publishedVersion(ctx.api, 'cached', '2.0');
    assert.deepEqual((await get('/v1/images/cached/versions')).versions.map((v: { version: string }) => v.version).sort(), ['1.0', '2.0']);
    for (const target of ['2.0', '1.0', '2.0']) {
      assert.equal((await ctx.api.put('/v1/images/cached/aliases/stable', { json: { version: target } })).status, 200);
      assert.equal((await get('/v1/images/cached/refs/stable')).version.version, target);
    }
    assert.equal((await ctx.api.delete('/v1/images/cached/aliases/stable')).status, 204);
    assert.equal((await ctx.api.get('/v1/images/cached/refs/stable', { token: null })).status, 404);
  });

  it('answers published reads with a strong ETag, 304 while it matches, and a new ETag once the alias moves', async () => {
    const etagOf = async (path: string, ifNoneMatch?: string) => {
      const res = await ctx.api.get(path, { token: null, headers: ifNoneMatch ? { 'if-none-match': ifNoneMatch } : {} });
      return { status: res.status, etag: res.headers.get('etag'), body: res.bytes.toString('utf8') };
    };
    assert.equal((await ctx.api.put('/v1/images/cached/aliases/stable', { json: { version: '1.0' } })).status, 200);
    for (const path of PATHS) {
      const first = await etagOf(path);
      assert.equal(first.status, 200);
      assert.match(first.etag ?? '', /^"[A-Za-z0-9_-]{27}"$/, `${path}: a strong ETag`);
      assert.deepEqual(await etagOf(path), first, `${path}: the same body and ETag while nothing changed`);
      const again = await etagOf(path, `"other", ${first.etag}`);
      assert.equal(again.status, 304, path);
      assert.equal(again.etag, first.etag);
      assert.equal(again.body, '');
    }
    const before = await etagOf('/v1/images/cached/refs/stable');
    assert.equal((await ctx.api.put('/v1/images/cached/aliases/stable', { json: { version: '2.0' } })).status, 200);
    const after = await etagOf('/v1/images/cached/refs/stable', before.etag!);
    assert.equal(after.status, 200, 'a moved alias is never answered 304 with the old ETag');
    assert.notEqual(after.etag, before.etag);
    assert.equal(JSON.parse(after.body).version.version, '2.0');
    // The version manifest itself did not change: its ETag stays valid across the move.
    const manifest = await etagOf('/v1/images/cached/versions/1.0');
    assert.equal((await etagOf('/v1/images/cached/versions/1.0', manifest.etag!)).status, 304);
  });

  it('shares one revision query among concurrent reads, never more than one per read', async () => {
    const reads = await readsDuring(async () => {
      await Promise.all(Array.from({ length: 20 }, () => get('/v1/images/cached/refs/stable')));
    });
    assert.ok(reads.every((m) => m === 'catalogRevision'), reads.join(', '));
    assert.ok(reads.length >= 1 && reads.length <= 20, `${reads.length} revision queries for 20 reads`);
  });

  it('does not keep drafts: a draft manifest follows its edits', async () => {
    assert.equal((await ctx.api.post('/v1/images/cached/versions', { version: '3.0-draft' })).status, 201);
    const empty = await ctx.api.get('/v1/images/cached/versions/3.0-draft');
    assert.deepEqual(empty.json.artifacts, []);
    const reads = await readsDuring(async () => void (await ctx.api.get('/v1/images/cached/versions/3.0-draft')));
    assert.ok(reads.length > 1, 'a draft is read from the store every time');
  });
});
