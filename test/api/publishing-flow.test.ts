import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256 } from '../helpers/bytes.ts';
import { flowCommands } from '../helpers/flow-doc.ts';
import { makeIncusTarXz, makeQcow2 } from '../helpers/images.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes, waitForUpload } from '../helpers/uploads.ts';

const hex = (digest: string) => digest.slice('sha256:'.length);

describe('publishing-flow.md, every curl run verbatim', () => {
  const ctx = useServer();
  let work: string;
  const vars: Record<string, string> = {};
  const commands = flowCommands();
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'imgsrv-flow-'));
    Object.assign(vars, { IMGSRV: ctx.server.url, TOKEN: ctx.server.token });
  });
  after(() => rm(work, { recursive: true, force: true }));

  /** Runs command `n` of the document with bash, exactly as written, in the work dir. */
  const run = (n: number): string => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(IMGSRV|TOKEN)/.test(k)));
    return execFileSync('bash', ['-c', commands[n]!], { cwd: work, env: { ...clean, ...vars }, encoding: 'utf8' });
  };
  /** Steps 1–2 of the flow for one file: begin, send part 1, complete. */
  const upload = async (bytes: Buffer, { complete = true } = {}) => {
    Object.assign(vars, { DIGEST: hex(sha256(bytes)), SIZE: String(bytes.length) });
    vars.UPLOAD_ID = JSON.parse(run(0)).id;
    await writeFile(join(work, 'image-part-001'), bytes);
    const part = JSON.parse(run(1));
    Object.assign(vars, { PART_ETAG: part.etag, PART_SIZE: String(part.size_bytes) });
    if (complete) run(2);
    return vars.UPLOAD_ID!;
  };
  const poll = async (n: number, done: (out: string) => boolean) => {
    for (let i = 0; i < 400; i++) {
      const out = run(n);
      if (done(out)) return out;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`command ${n} never reached the expected state`);
  };

  it('has the twelve commands this test walks through', () => {
    assert.equal(commands.length, 12);
  });

  it('uploads, drafts, attaches, publishes (failing until an upload is ready), retries and moves latest', async () => {
    const disk = await makeQcow2();
    const metadata = await makeIncusTarXz();

    await upload(disk);
    assert.equal((await poll(3, (out) => out.trim() !== '"completed"' && out.trim() !== '"ingesting"')).trim(), '"ready"');
    Object.assign(vars, { PRIMARY_DIGEST: hex(sha256(disk)), PRIMARY_SIZE: String(disk.length) });

    // The metadata upload is still open: drafting may overlap uploading.
    const metadataUpload = await upload(metadata, { complete: false });
    const metadataPart = { PART_ETAG: vars.PART_ETAG!, PART_SIZE: vars.PART_SIZE! };
    Object.assign(vars, { INCUS_METADATA_DIGEST: hex(sha256(metadata)), INCUS_METADATA_SIZE: String(metadata.length) });

    assert.equal(JSON.parse(run(4)).name, 'debian-bookworm');
    assert.equal(JSON.parse(run(5)).state, 'draft');
    vars.ARTIFACT_ID = JSON.parse(run(6)).id;
    assert.equal(JSON.parse(run(7)).name, 'incus.tar.xz');
    const job = JSON.parse(run(8));
    vars.JOB_ID = job.id;
    assert.equal(JSON.parse(run(8)).id, job.id, 're-issuing publish returns the same job');

    const failed = JSON.parse(await poll(9, (out) => /"state": "(succeeded|failed)"/.test(out)));
    assert.equal(failed.state, 'failed');
    assert.equal(failed.failed_step, 'validate_catalog');
    assert.match(failed.reason, new RegExp(`${vars.INCUS_METADATA_DIGEST}, which is not a trusted blob yet`));

    // Recovery: finish the upload, wait for ready, retry the job.
    Object.assign(vars, { UPLOAD_ID: metadataUpload, ...metadataPart });
    run(2);
    assert.equal((await poll(3, (out) => out.trim() === '"ready"')).trim(), '"ready"');
    assert.equal(JSON.parse(run(10)).id, vars.JOB_ID);
    const succeeded = JSON.parse(await poll(9, (out) => /"state": "(succeeded|failed)"/.test(out)));
    assert.deepEqual(succeeded, { state: 'succeeded', failed_step: null, reason: null });

    const alias = JSON.parse(run(11));
    assert.deepEqual([alias.alias, alias.version], ['latest', '12.5.0']);
    const resolved = await ctx.api.get('/v1/images/debian-bookworm/refs/latest', { token: null });
    assert.equal(resolved.json.version.state, 'published');
  });
});

describe('the publishing flow with parts, end to end', () => {
  const ctx = useServer();

  it('publishes a real qcow2 with its incus.tar.xz and serves both byte for byte', async () => {
    const api = ctx.api;
    const disk = await makeQcow2(24);
    const metadata = await makeIncusTarXz({ properties: { os: 'Debian', release: 'bookworm', description: 'Debian 12 (bookworm) amd64' } });
    const [{ digest: diskDigest }, { digest: metaDigest }] = await Promise.all([uploadBytes(api, disk, { parts: 3 }), uploadBytes(api, metadata, { parts: 2 })]);

    assert.equal((await api.post('/v1/images', { name: 'debian-bookworm', display_name: 'Debian 12', description: 'Debian bookworm cloud images' })).status, 201);
    const draft = await api.post('/v1/images/debian-bookworm/versions', { version: '12.5.0' });
    assert.equal(draft.status, 201);
    assert.equal(draft.json.state, 'draft');
    const empty = await api.get('/v1/images/debian-bookworm/versions/12.5.0');
    assert.deepEqual(empty.json.artifacts, [], 'a new draft has an empty manifest');

    const artifact = await api.post('/v1/images/debian-bookworm/versions/12.5.0/artifacts', {
      operating_system: 'debian',
      architecture: 'amd64',
      format: 'qcow2',
      primary_blob_digest: diskDigest,
      primary_blob_size_bytes: disk.length,
      primary_media_type: 'application/x-qemu-disk',
    });
    assert.equal(artifact.status, 201);
    assert.equal(artifact.json.variant, 'default');
    const base = `/v1/images/debian-bookworm/versions/12.5.0/artifacts/${artifact.json.id}`;
    const attachment = await api.post(`${base}/attachments`, { name: 'incus.tar.xz', blob_digest: metaDigest, blob_size_bytes: metadata.length, media_type: 'application/x-incus-metadata' });
    assert.equal(attachment.status, 201);

    const job = await api.post('/v1/images/debian-bookworm/versions/12.5.0/publish');
    assert.equal(job.status, 202);
    assert.deepEqual(job.json.steps.map((s: { name: string; sequence: number }) => [s.name, s.sequence]), [['validate_catalog', 0], ['incus_index', 1], ['finalize_publish', 2]]);
    let state = job.json;
    for (let i = 0; state.state !== 'succeeded' && state.state !== 'failed' && i < 400; i++) {
      await new Promise((r) => setTimeout(r, 25));
      state = (await api.get(`/v1/publish-jobs/${job.json.id}`)).json;
    }
    assert.equal(state.state, 'succeeded', JSON.stringify(state));
    assert.deepEqual(state.steps.map((s: { state: string; attempt_count: number }) => [s.state, s.attempt_count]), [['succeeded', 1], ['succeeded', 1], ['succeeded', 1]]);
    assert.ok(state.started_at && state.finished_at);

    const manifest = await api.get('/v1/images/debian-bookworm/versions/12.5.0', { token: null });
    assert.equal(manifest.json.version.state, 'published');
    assert.ok(Date.parse(manifest.json.version.published_at) <= Date.now());
    assert.equal(manifest.json.artifacts[0].attachments[0].id, attachment.json.id);
    assert.equal((await api.put('/v1/images/debian-bookworm/aliases/latest', { json: { version: '12.5.0' } })).status, 200);
    const resolved = await api.get('/v1/images/debian-bookworm/refs/latest', { token: null });
    assert.deepEqual(resolved.json, manifest.json, 'the alias resolves to the published manifest');
    assert.deepEqual((await api.get('/v1/images/debian-bookworm/refs/12.5.0')).json, manifest.json);
    assert.deepEqual((await api.get('/v1/images', { token: null })).json.images.map((i: { name: string }) => i.name), ['debian-bookworm']);
    assert.equal((await api.get('/v1/images/debian-bookworm', { token: null })).json.display_name, 'Debian 12');

    const diskDownload = await api.get(`${base}/download`, { token: null });
    assert.equal(diskDownload.status, 200);
    assert.equal(diskDownload.headers.get('content-type'), 'application/x-qemu-disk');
    assert.ok(diskDownload.bytes.equals(disk), 'the artifact downloads byte for byte');
    const metaDownload = await api.get(`${base}/attachments/${attachment.json.id}/download`, { token: null });
    assert.equal(metaDownload.headers.get('content-type'), 'application/x-incus-metadata');
    assert.ok(metaDownload.bytes.equals(metadata), 'the attachment downloads byte for byte');
    const ranged = await api.get(`${base}/download`, { headers: { range: 'bytes=0-3' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.bytes.toString('latin1'), 'QFI\xfb', 'a qcow2 starts with its magic');
    assert.equal((await api.get(`${base}/download`, { headers: { 'if-none-match': `"${diskDigest}"` } })).status, 304);
    assert.equal((await api.head(`${base}/attachments/${attachment.json.id}/download`)).headers.get('content-length'), String(metadata.length));
    await waitForUpload(api, (await api.post('/v1/uploads', { expected_digest: diskDigest, expected_size_bytes: disk.length })).json.id);
  });
});
