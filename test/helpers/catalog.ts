import assert from 'node:assert/strict';
import type { ApiClient } from './client.ts';
import { makeIncusTarXz, makeQcow2, type IncusMetadataFields } from './images.ts';
import { uploadBytes } from './uploads.ts';

export async function waitForJob(api: ApiClient, id: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api.get(`/v1/publish-jobs/${id}`);
    assert.equal(res.status, 200);
    if (res.json.state === 'succeeded' || res.json.state === 'failed') return res.json;
    if (Date.now() > deadline) throw new Error(`publish job ${id} stuck in ${res.json.state}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface DraftOptions {
  architecture?: string;
  variant?: string;
  format?: 'qcow2' | 'raw' | 'raw.gz';
  disk?: Buffer;
  /** incus.tar.xz to attach (qcow2 only); `false` for none. */
  metadata?: IncusMetadataFields | Buffer | false;
}

/** Creates the image if needed and a draft with one artifact (and its incus.tar.xz). */
export async function draftVersion(api: ApiClient, image: string, version: string, opts: DraftOptions = {}) {
  const created = await api.post('/v1/images', { name: image });
  assert.ok(created.status === 201 || created.status === 409);
  assert.equal((await api.post(`/v1/images/${image}/versions`, { version })).status, 201);
  const disk = opts.disk ?? (await makeQcow2(4));
  const { digest } = await uploadBytes(api, disk);
  const artifact = await api.post(`/v1/images/${image}/versions/${version}/artifacts`, {
    operating_system: 'debian',
    architecture: opts.architecture ?? 'amd64',
    format: opts.format ?? 'qcow2',
    ...(opts.variant && { variant: opts.variant }),
    primary_blob_digest: digest,
    primary_blob_size_bytes: disk.length,
    primary_media_type: 'application/x-qemu-disk',
  });
  assert.equal(artifact.status, 201, JSON.stringify(artifact.json));
  let metadata: Buffer | undefined;
  if (opts.metadata !== false) {
    metadata = Buffer.isBuffer(opts.metadata) ? opts.metadata : await makeIncusTarXz(opts.metadata);
    const m = await uploadBytes(api, metadata);
    const attached = await api.post(`/v1/images/${image}/versions/${version}/artifacts/${artifact.json.id}/attachments`, {
      name: 'incus.tar.xz',
      blob_digest: m.digest,
      blob_size_bytes: metadata.length,
      media_type: 'application/x-incus-metadata',
    });
    assert.equal(attached.status, 201);
  }
  return { artifactId: artifact.json.id as string, disk, metadata };
}

/** A draft, published, with its job polled to a terminal state. */
export async function publishedVersion(api: ApiClient, image: string, version: string, opts: DraftOptions = {}) {
  const draft = await draftVersion(api, image, version, opts);
  const job = await api.post(`/v1/images/${image}/versions/${version}/publish`);
  assert.equal(job.status, 202);
  const done = await waitForJob(api, job.json.id);
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  return { ...draft, job: done };
}
