import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { draftVersion, publishedVersion, waitForJob } from '../helpers/catalog.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes } from '../helpers/uploads.ts';
import { seedPrincipal } from '../helpers/store.ts';

const artifactBody = (digest: string, size: number, extra: Record<string, unknown> = {}) => ({
  operating_system: 'debian',
  architecture: 'amd64',
  format: 'qcow2',
  primary_blob_digest: digest,
  primary_blob_size_bytes: size,
  primary_media_type: 'application/x-qemu-disk',
  ...extra,
});

describe('catalog: conflicts, preconditions, not found', () => {
  const ctx = useServer();

  it('refuses a second image or version of the same name (409)', async () => {
    assert.equal((await ctx.api.post('/v1/images', { name: 'dup' })).status, 201);
    const again = await ctx.api.post('/v1/images', { name: 'dup' });
    assert.equal(again.status, 409);
    assert.match(again.json.detail, /image dup already exists/);
    assert.equal((await ctx.api.post('/v1/images/dup/versions', { version: '1.0' })).status, 201);
    const version = await ctx.api.post('/v1/images/dup/versions', { version: '1.0' });
    assert.equal(version.status, 409);
    assert.match(version.json.detail, /already has a version 1\.0/);
  });

  it('validates names, versions and artifact fields against the contract (400)', async () => {
    for (const name of ['Upper', '-lead', '', 'a'.repeat(129), 'sp ace']) assert.equal((await ctx.api.post('/v1/images', { name })).status, 400, name);
    assert.equal((await ctx.api.post('/v1/images', { name: 'ok', colour: 'red' })).status, 400);
    await ctx.api.post('/v1/images', { name: 'fields' });
    for (const version of ['', '-1', 'a b', 'x'.repeat(129)]) assert.equal((await ctx.api.post('/v1/images/fields/versions', { version })).status, 400, version);
    await ctx.api.post('/v1/images/fields/versions', { version: '1' });
    const { digest } = await uploadBytes(ctx.api, random(10));
    for (const extra of [{ format: 'vmdk' }, { architecture: 'x/86' }, { variant: '' }, { primary_blob_size_bytes: -1 }, { primary_media_type: '' }, { unknown: 1 }]) {
      const res = await ctx.api.post('/v1/images/fields/versions/1/artifacts', artifactBody(digest, 10, extra));
      assert.equal(res.status, 400, JSON.stringify(extra));
    }
    assert.equal((await ctx.api.get('/v1/images/fields/versions/1/artifacts/not-a-uuid')).status, 400);
  });

  it('answers 404 for unknown images, versions, artifacts, attachments, aliases, refs and jobs', async () => {
    await publishedVersion(ctx.api, 'nf', '1', { metadata: false });
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const path of [
      '/v1/images/nope',
      '/v1/images/nope/versions',
      '/v1/images/nope/versions/1',
      '/v1/images/nf/versions/2',
      '/v1/images/nf/versions/2/artifacts',
      `/v1/images/nf/versions/1/artifacts/${missing}`,
      `/v1/images/nf/versions/1/artifacts/${missing}/download`,
      `/v1/images/nf/versions/1/artifacts/${missing}/attachments/${missing}/download`,
      '/v1/images/nf/aliases/none',
      '/v1/images/nope/aliases',
      '/v1/images/nf/refs/none',
      `/v1/publish-jobs/${missing}`,
    ]) {
      assert.equal((await ctx.api.get(path)).status, 404, path);
    }
    assert.equal((await ctx.api.post('/v1/images/nope/versions', { version: '1' })).status, 404);
    assert.equal((await ctx.api.post('/v1/images/nf/versions/9/publish')).status, 404);
    assert.equal((await ctx.api.post(`/v1/publish-jobs/${missing}/retry`)).status, 404);
    assert.equal((await ctx.api.put('/v1/images/nf/aliases/x', { json: { version: '9' } })).status, 404);
    assert.equal((await ctx.api.delete('/v1/images/nf/aliases/none')).status, 404);
    assert.equal((await ctx.api.delete(`/v1/images/nf/versions/1/artifacts/${missing}`)).status, 412, 'a published version cannot change at all');
  });

  it('keeps drafts out of public listings and artifact reads until a version is published', async () => {
    const { artifactId } = await draftVersion(ctx.api, 'drafty', '0.1', { metadata: false });
    const names = (await ctx.api.get('/v1/images')).json.images.map((i: { name: string }) => i.name);
    assert.ok(!names.includes('drafty'));
    for (const path of ['/v1/images/drafty', '/v1/images/drafty/versions', '/v1/images/drafty/aliases', '/v1/images/drafty/versions/0.1/artifacts', `/v1/images/drafty/versions/0.1/artifacts/${artifactId}`, `/v1/images/drafty/versions/0.1/artifacts/${artifactId}/download`]) {
      const res = await ctx.api.get(path, { token: null });
      assert.equal(res.status, 404, path);
      assert.match(res.json.detail, /no published version yet|is draft/);
    }
    const manifest = await ctx.api.get('/v1/images/drafty/versions/0.1', { token: null });
    assert.equal(manifest.json.version.state, 'draft', 'the exact draft manifest is readable');
    assert.equal(manifest.json.artifacts[0].artifact.id, artifactId);
    const job = await ctx.api.post('/v1/images/drafty/versions/0.1/publish');
    await waitForJob(ctx.api, job.json.id);
    for (const path of ['/v1/images/drafty', '/v1/images/drafty/versions', '/v1/images/drafty/aliases', '/v1/images/drafty/versions/0.1/artifacts', `/v1/images/drafty/versions/0.1/artifacts/${artifactId}/download`]) {
      assert.equal((await ctx.api.get(path, { token: null })).status, 200, path);
    }
  });

  it('adds artifacts only for digests the server knows, with the right size (412)', async () => {
    await ctx.api.post('/v1/images', { name: 'known' });
    await ctx.api.post('/v1/images/known/versions', { version: '1' });
    const unknown = await ctx.api.post('/v1/images/known/versions/1/artifacts', artifactBody(sha256(random(8)), 8));
    assert.equal(unknown.status, 412);
    assert.match(unknown.json.detail, /neither a trusted blob nor expected by an open upload session/);
    const bytes = random(100);
    const { digest } = await uploadBytes(ctx.api, bytes);
    const wrongSize = await ctx.api.post('/v1/images/known/versions/1/artifacts', artifactBody(digest, 99));
    assert.equal(wrongSize.status, 412);
    assert.match(wrongSize.json.detail, /trusted blob of 100 bytes, not 99/);
    // An open upload session expecting the digest and size makes it known (drafting overlaps uploading).
    const pending = random(50);
    const session = await ctx.api.post('/v1/uploads', { expected_digest: sha256(pending), expected_size_bytes: 50 });
    assert.equal((await ctx.api.post('/v1/images/known/versions/1/artifacts', artifactBody(sha256(pending), 51, { variant: 'x' }))).status, 412);
    assert.equal((await ctx.api.post('/v1/images/known/versions/1/artifacts', artifactBody(sha256(pending), 50, { variant: 'pending' }))).status, 201);
    await ctx.api.post(`/v1/uploads/${session.json.id}/abort`);
    assert.equal((await ctx.api.post('/v1/images/known/versions/1/artifacts', artifactBody(sha256(pending), 50, { variant: 'aborted' }))).status, 412, 'an aborted session expects nothing');
  });

  it('allows one artifact per variant, OS, architecture and format, and one attachment per name (409)', async () => {
    const { artifactId, disk } = await draftVersion(ctx.api, 'uniq', '1');
    const digest = sha256(disk);
    const dup = await ctx.api.post('/v1/images/uniq/versions/1/artifacts', artifactBody(digest, disk.length));
    assert.equal(dup.status, 409);
    assert.match(dup.json.detail, /already has an artifact debian\/amd64\/qcow2 \(variant default\)/);
    for (const extra of [{ variant: 'desktop' }, { architecture: 'arm64' }, { format: 'raw' }, { operating_system: 'ubuntu' }]) {
      assert.equal((await ctx.api.post('/v1/images/uniq/versions/1/artifacts', artifactBody(digest, disk.length, extra))).status, 201, JSON.stringify(extra));
    }
    const manifest = await ctx.api.get('/v1/images/uniq/versions/1');
    const meta = manifest.json.artifacts[0].attachments[0];
    const again = await ctx.api.post(`/v1/images/uniq/versions/1/artifacts/${artifactId}/attachments`, { name: 'incus.tar.xz', blob_digest: meta.blob_digest, blob_size_bytes: meta.blob_size_bytes, media_type: 'application/x-xz' });
    assert.equal(again.status, 409);
    assert.equal((await ctx.api.get('/v1/images/uniq/versions/1')).json.artifacts.length, 5);
  });

  it('deletes artifacts and attachments of a draft, and nothing once publishing started (412)', async () => {
    const { artifactId } = await draftVersion(ctx.api, 'frozen', '1');
    const base = `/v1/images/frozen/versions/1/artifacts/${artifactId}`;
    const attachmentId = (await ctx.api.get('/v1/images/frozen/versions/1')).json.artifacts[0].attachments[0].id;
    assert.equal((await ctx.api.delete(`${base}/attachments/${attachmentId}`)).status, 204);
    assert.equal((await ctx.api.delete(`${base}/attachments/${attachmentId}`)).status, 404);
    assert.equal((await ctx.api.get('/v1/images/frozen/versions/1')).json.artifacts[0].attachments.length, 0);
    const job = await ctx.api.post('/v1/images/frozen/versions/1/publish');
    assert.equal(job.status, 202);
    const d = await ctx.api.get('/v1/images/frozen/versions/1');
    assert.notEqual(d.json.version.state, 'draft');
    const { digest } = await uploadBytes(ctx.api, random(7));
    for (const [method, path, json] of [
      ['DELETE', base],
      ['POST', '/v1/images/frozen/versions/1/artifacts', artifactBody(digest, 7, { variant: 'late' })],
      ['POST', `${base}/attachments`, { name: 'sbom.json', blob_digest: digest, blob_size_bytes: 7, media_type: 'application/json' }],
    ] as const) {
      const res = await ctx.api.request(method, path, json ? { json } : {});
      assert.equal(res.status, 412, `${method} ${path}`);
      assert.match(res.json.detail, /nothing in a version can change once it is no longer a draft/);
    }
    await waitForJob(ctx.api, job.json.id);
    assert.equal((await ctx.api.delete(base)).status, 412);
    const fresh = await draftVersion(ctx.api, 'frozen', '2', { metadata: false });
    assert.equal((await ctx.api.delete(`/v1/images/frozen/versions/2/artifacts/${fresh.artifactId}`)).status, 204);
    const empty = await ctx.api.post('/v1/images/frozen/versions/2/publish');
    assert.equal(empty.status, 412, 'an empty draft cannot be published');
    assert.match(empty.json.detail, /has no artifact/);
  });

  it('moves aliases to published versions only, older ones included, and resolves refs', async () => {
    await publishedVersion(ctx.api, 'al', '1.0', { metadata: false });
    await publishedVersion(ctx.api, 'al', '2.0', { metadata: false });
    await draftVersion(ctx.api, 'al', '3.0', { metadata: false });
    const toDraft = await ctx.api.put('/v1/images/al/aliases/latest', { json: { version: '3.0' } });
    assert.equal(toDraft.status, 412);
    assert.match(toDraft.json.detail, /version 3\.0 is draft; aliases point at published versions only/);
    assert.equal((await ctx.api.put('/v1/images/al/aliases/latest', { json: { version: '9.9' } })).status, 404);
    const created = await ctx.api.put('/v1/images/al/aliases/latest', { json: { version: '2.0' } });
    assert.equal(created.status, 200);
    const moved = await ctx.api.put('/v1/images/al/aliases/latest', { json: { version: '1.0' } });
    assert.equal(moved.json.version, '1.0', 'an explicit PUT may move an alias back');
    assert.equal(moved.json.id, created.json.id);
    assert.equal((await ctx.api.get('/v1/images/al/refs/latest')).json.version.version, '1.0');
    assert.equal((await ctx.api.put('/v1/images/al/aliases/stable', { json: { version: '2.0' } })).status, 200);
    assert.deepEqual((await ctx.api.get('/v1/images/al/aliases')).json.aliases.map((a: { alias: string; version: string }) => [a.alias, a.version]), [['latest', '1.0'], ['stable', '2.0']]);
    assert.equal((await ctx.api.get('/v1/images/al/aliases/stable')).json.version, '2.0');
    assert.equal((await ctx.api.get('/v1/images/al/refs/2.0')).json.version.version, '2.0', 'an exact published version');
    assert.equal((await ctx.api.get('/v1/images/al/refs/3.0')).status, 404, 'a draft is not a ref');
    // A version named like an alias: the published version wins; a draft of that name never shadows the alias.
    await ctx.api.put('/v1/images/al/aliases/4.0', { json: { version: '2.0' } });
    await draftVersion(ctx.api, 'al', '4.0', { metadata: false });
    assert.equal((await ctx.api.get('/v1/images/al/refs/4.0')).json.version.version, '2.0');
    const published4 = await ctx.api.post('/v1/images/al/versions/4.0/publish');
    await waitForJob(ctx.api, published4.json.id);
    assert.equal((await ctx.api.get('/v1/images/al/refs/4.0')).json.version.version, '4.0');
    assert.equal((await ctx.api.delete('/v1/images/al/aliases/stable')).status, 204);
    assert.equal((await ctx.api.get('/v1/images/al/aliases/stable')).status, 404);
    assert.deepEqual((await ctx.api.get('/v1/images/al/versions')).json.versions.map((v: { version: string }) => v.version), ['1.0', '2.0', '4.0']);
  });

  it('checks roles on every catalog change (401 without a token, 403 without content-writer)', async () => {
    await publishedVersion(ctx.api, 'authz', '1', { metadata: false });
    const authOnly = await seedPrincipal(ctx.server.dataDir, { roles: ['auth-manager'] });
    const missing = '00000000-0000-4000-8000-000000000000';
    const calls: [string, string, unknown?][] = [
      ['POST', '/v1/images', { name: 'x' }],
      ['POST', '/v1/images/authz/versions', { version: '2' }],
      ['POST', '/v1/images/authz/versions/1/artifacts', artifactBody(sha256(random(3)), 3)],
      ['DELETE', `/v1/images/authz/versions/1/artifacts/${missing}`],
      ['POST', `/v1/images/authz/versions/1/artifacts/${missing}/attachments`, { name: 'a', media_type: 'b', blob_digest: sha256(random(3)), blob_size_bytes: 3 }],
      ['DELETE', `/v1/images/authz/versions/1/artifacts/${missing}/attachments/${missing}`],
      ['POST', '/v1/images/authz/versions/1/publish'],
      ['GET', `/v1/publish-jobs/${missing}`],
      ['POST', `/v1/publish-jobs/${missing}/retry`],
      ['PUT', '/v1/images/authz/aliases/latest', { version: '1' }],
      ['DELETE', '/v1/images/authz/aliases/latest'],
    ];
    for (const [method, path, json] of calls) {
      assert.equal((await ctx.api.request(method, path, { json, token: null })).status, 401, `${method} ${path}`);
      assert.equal((await ctx.api.request(method, path, { json, token: authOnly })).status, 403, `${method} ${path}`);
    }
    for (const path of ['/v1/images', '/v1/images/authz', '/v1/images/authz/versions', '/v1/images/authz/versions/1', '/v1/images/authz/aliases', '/v1/images/authz/refs/1']) {
      assert.equal((await ctx.api.get(path, { token: null })).status, 200, `${path} is public`);
    }
  });
});
