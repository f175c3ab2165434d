import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { draftVersion, publishedVersion, waitForJob } from '../helpers/catalog.ts';
import { makeIncusTarXz, makeQcow2 } from '../helpers/images.ts';
import { testStorage } from '../helpers/storage.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes, waitForUpload } from '../helpers/uploads.ts';

const attempts = (job: { steps: { name: string; state: string; attempt_count: number }[] }) => Object.fromEntries(job.steps.map((s) => [s.name, `${s.state}/${s.attempt_count}`]));

describe('publish jobs: failure, retry, idempotence, concurrency', () => {
  const ctx = useServer();

  it('fails validate_catalog while an upload is not ready, then retries from that step', async () => {
    await ctx.api.post('/v1/images', { name: 'pending' });
    await ctx.api.post('/v1/images/pending/versions', { version: '1' });
    const disk = await makeQcow2(4);
    const begin = await ctx.api.post('/v1/uploads', { expected_digest: sha256(disk), expected_size_bytes: disk.length });
    const artifact = await ctx.api.post('/v1/images/pending/versions/1/artifacts', {
      operating_system: 'debian',
      architecture: 'amd64',
      format: 'qcow2',
      primary_blob_digest: sha256(disk),
      primary_blob_size_bytes: disk.length,
      primary_media_type: 'application/x-qemu-disk',
    });
    assert.equal(artifact.status, 201);
    const job = await ctx.api.post('/v1/images/pending/versions/1/publish');
    const failed = await waitForJob(ctx.api, job.json.id);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.failed_step, 'validate_catalog');
    assert.match(failed.reason, new RegExp(`references ${sha256(disk)}, which is not a trusted blob yet`));
    assert.equal(failed.failure_message, `validate_catalog: ${failed.reason}`);
    assert.deepEqual(attempts(failed), { validate_catalog: 'failed/1', incus_index: 'queued/0', finalize_publish: 'queued/0' });
    assert.equal((await ctx.api.get('/v1/images/pending/versions/1')).json.version.state, 'publishing');
    assert.equal((await ctx.api.post('/v1/images/pending/versions/1/publish')).json.id, job.json.id, 'publish again returns the same job, not a second one');

    const put = await ctx.api.put(`/v1/uploads/${begin.json.id}/parts/1`, { body: disk, headers: { 'content-type': 'application/octet-stream' } });
    await ctx.api.post(`/v1/uploads/${begin.json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: disk.length }] });
    await waitForUpload(ctx.api, begin.json.id);
    const retried = await ctx.api.post(`/v1/publish-jobs/${job.json.id}/retry`);
    assert.equal(retried.status, 202);
    assert.equal(retried.json.failed_step, undefined);
    const done = await waitForJob(ctx.api, job.json.id);
    assert.deepEqual(attempts(done), { validate_catalog: 'succeeded/2', incus_index: 'skipped/1', finalize_publish: 'succeeded/1' });
    const again = await ctx.api.post(`/v1/publish-jobs/${job.json.id}/retry`);
    assert.equal(again.status, 412);
    assert.match(again.json.detail, /is succeeded; only a failed job can be retried/);
  });

  it('fails incus_index when a blob vanished from storage, and a retry does not re-run validate_catalog', async () => {
    const { metadata } = await draftVersion(ctx.api, 'vanish', '1');
    const digest = sha256(metadata!);
    const restore = await (await testStorage(ctx.server.dataDir)).hideBlob(digest);
    const job = await ctx.api.post('/v1/images/vanish/versions/1/publish');
    const failed = await waitForJob(ctx.api, job.json.id);
    assert.equal(failed.failed_step, 'incus_index');
    assert.match(failed.reason, new RegExp(`blob ${digest} is not stored`));
    await restore();
    await ctx.api.post(`/v1/publish-jobs/${job.json.id}/retry`);
    const done = await waitForJob(ctx.api, job.json.id);
    assert.deepEqual(attempts(done), { validate_catalog: 'succeeded/1', incus_index: 'succeeded/2', finalize_publish: 'succeeded/1' });
  });

  it('refuses an unusable incus.tar.xz when it is attached (412), while the draft can still be fixed', async () => {
    const cases: [string, Buffer | Parameters<typeof makeIncusTarXz>[0], RegExp][] = [
      ['not-xz', random(500), /not a valid xz archive/],
      ['empty', Buffer.alloc(0), /not a valid xz archive/],
      ['no-arch', { yaml: 'creation_date: 1795400000\n' }, /has no architecture/],
      ['zero-date', { creationDate: 0 }, /non-zero integer creation_date/],
      ['huge-date', { creationDate: 1e300 }, /non-zero integer creation_date/],
      ['bad-yaml', { yaml: 'architecture: [unclosed\n' }, /not valid YAML/],
      ['other-arch', { architecture: 'aarch64' }, /metadata\.yaml is for architecture aarch64/],
    ];
    const { artifactId } = await draftVersion(ctx.api, 'meta-check', '1', { metadata: false });
    for (const [label, metadata, reason] of cases) {
      const bytes = Buffer.isBuffer(metadata) ? metadata : await makeIncusTarXz(metadata);
      const { digest } = await uploadBytes(ctx.api, bytes);
      const res = await ctx.api.post(`/v1/images/meta-check/versions/1/artifacts/${artifactId}/attachments`, { name: 'incus.tar.xz', blob_digest: digest, blob_size_bytes: bytes.length, media_type: 'application/x-incus-metadata' });
      assert.equal(res.status, 412, label);
      assert.match(res.json.detail, reason, label);
      assert.match(res.json.detail, /^artifact debian\/amd64\/qcow2 \(variant default\): /);
    }
  });

  it('fails incus_index for an unusable incus.tar.xz that was still uploading when attached', async () => {
    const { artifactId } = await draftVersion(ctx.api, 'meta-late', '1', { metadata: false });
    // Distinct from the bytes of the previous test (same second, same mtime), which are trusted already.
    const bad = await makeIncusTarXz({ creationDate: 0, properties: { description: 'attached while uploading' } });
    const begin = await ctx.api.post('/v1/uploads', { expected_digest: sha256(bad), expected_size_bytes: bad.length });
    const attached = await ctx.api.post(`/v1/images/meta-late/versions/1/artifacts/${artifactId}/attachments`, { name: 'incus.tar.xz', blob_digest: sha256(bad), blob_size_bytes: bad.length, media_type: 'application/x-incus-metadata' });
    assert.equal(attached.status, 201, 'its bytes are not verified yet, so they cannot be checked yet');
    const put = await ctx.api.put(`/v1/uploads/${begin.json.id}/parts/1`, { body: bad, headers: { 'content-type': 'application/octet-stream' } });
    await ctx.api.post(`/v1/uploads/${begin.json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: bad.length }] });
    await waitForUpload(ctx.api, begin.json.id);
    const job = await ctx.api.post('/v1/images/meta-late/versions/1/publish');
    const failed = await waitForJob(ctx.api, job.json.id);
    assert.equal(failed.failed_step, 'incus_index');
    assert.match(failed.reason, /^artifact debian\/amd64\/qcow2 \(variant default\): metadata\.yaml in incus\.tar\.xz needs a non-zero integer creation_date/);
  });

  it('publishes a version without Incus metadata, skipping incus_index', async () => {
    const { job } = await publishedVersion(ctx.api, 'raw-only', '1', { format: 'raw', metadata: false });
    assert.deepEqual(attempts(job), { validate_catalog: 'succeeded/1', incus_index: 'skipped/1', finalize_publish: 'succeeded/1' });
  });

  it('creates one job for concurrent publishes of one draft', async () => {
    await draftVersion(ctx.api, 'race-publish', '1', { metadata: false });
    const answers = await Promise.all(Array.from({ length: 8 }, () => ctx.api.post('/v1/images/race-publish/versions/1/publish')));
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([202]));
    assert.equal(new Set(answers.map((a) => a.json.id)).size, 1);
    assert.equal((await waitForJob(ctx.api, answers[0]!.json.id)).state, 'succeeded');
  });

  it('creates one artifact for concurrent adds with the same key', async () => {
    await ctx.api.post('/v1/images', { name: 'race-artifact' });
    await ctx.api.post('/v1/images/race-artifact/versions', { version: '1' });
    const bytes = random(1000);
    const { digest } = await uploadBytes(ctx.api, bytes);
    const body = { operating_system: 'debian', architecture: 'amd64', format: 'raw', primary_blob_digest: digest, primary_blob_size_bytes: 1000, primary_media_type: 'application/octet-stream' };
    const answers = await Promise.all(Array.from({ length: 6 }, () => ctx.api.post('/v1/images/race-artifact/versions/1/artifacts', body)));
    assert.deepEqual(answers.map((a) => a.status).sort(), [201, 409, 409, 409, 409, 409]);
    assert.equal((await ctx.api.get('/v1/images/race-artifact/versions/1')).json.artifacts.length, 1);
  });

  it('never lets an alias point at a version that is not published, even racing its publish', async () => {
    await publishedVersion(ctx.api, 'race-alias', '1', { metadata: false });
    await draftVersion(ctx.api, 'race-alias', '2', { metadata: false });
    const job = await ctx.api.post('/v1/images/race-alias/versions/2/publish');
    const statuses = new Set<number>();
    for (let i = 0; i < 60; i++) {
      const res = await ctx.api.put('/v1/images/race-alias/aliases/latest', { json: { version: '2' } });
      statuses.add(res.status);
      const alias = await ctx.api.get('/v1/images/race-alias/aliases/latest');
      if (alias.status === 200) {
        const target = await ctx.api.get(`/v1/images/race-alias/versions/${alias.json.version}`);
        assert.equal(target.json.version.state, 'published', 'the alias points at a published version');
      }
      if (res.status === 200) break;
    }
    assert.ok([...statuses].every((s) => s === 200 || s === 412), [...statuses].join());
    await waitForJob(ctx.api, job.json.id);
    assert.equal((await ctx.api.put('/v1/images/race-alias/aliases/latest', { json: { version: '2' } })).status, 200);
  });
});
