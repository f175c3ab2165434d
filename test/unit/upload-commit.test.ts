import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { createCas } from '../../src/blobs/cas.ts';
import { createFsDriver } from '../../src/blobs/fs/fs-driver.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { createIngestService } from '../../src/services/ingest.ts';
import { createPartWrites } from '../../src/services/part-writes.ts';
import { createRegistryUploads } from '../../src/services/registry-uploads.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { neverAborted, random, sha256, streamOf } from '../helpers/bytes.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { openTestStore } from '../helpers/store.ts';
import { readAll } from '../suites/byte-driver.suite.ts';
import { rejectsWith } from '../suites/common.ts';

const log = pino({ level: 'silent' });

describe('uploads whose digest is learned at the end, committed synchronously', () => {
  let dir: string;
  let store: MetadataStore;
  let services: Awaited<ReturnType<typeof build>>;
  const build = async () => {
    const blobs = createCas(await createFsDriver({ root: dir }));
    const base = { store, blobs, clock: systemClock, log, newId: randomUUID };
    const ingest = createIngestService({ ...base, uploadTtlSeconds: 3600, failpoint: async () => {} });
    const uploads = createRegistryUploads({ ...base, writes: createPartWrites({ store, clock: systemClock }), ingest, uploadTtlMs: 3_600_000, maxBlobBytes: 1 << 30 });
    return { blobs, uploads };
  };
  beforeEach(async () => {
    dir = await makeDataDir();
    store = await openTestStore(dir);
    services = await build();
  });
  afterEach(async () => {
    await store.close();
    await removeDir(dir);
  });

  const repository = 'team/app';
  /** A session as an OCI push opens it: no digest, no size. */
  const open = async () => (await services.uploads.open(repository)).id;
  const send = (uploadId: string, _n: number, bytes: Buffer) => services.uploads.append({ repository, uploadId, length: bytes.length, body: streamOf(bytes), signal: neverAborted() });

  it('commits the parts in order under the digest the client names at the end', async () => {
    const bytes = random(3_000_000);
    const id = await open();
    await send(id, 1, bytes.subarray(0, 1_000_000));
    await send(id, 2, bytes.subarray(1_000_000));
    const done = await services.uploads.commit({ repository, uploadId: id, digest: sha256(bytes), signal: neverAborted() });
    assert.deepEqual([done.state, done.expectedDigest, done.expectedSize], ['ready', sha256(bytes), bytes.length]);
    assert.ok((await readAll(await services.blobs.open(sha256(bytes)), 1 << 20)).equals(bytes));
    assert.equal((await store.getBlob(sha256(bytes)))?.size, bytes.length);
    assert.equal((await services.uploads.commit({ repository, uploadId: id, digest: sha256(bytes), signal: neverAborted() })).state, 'ready', 'a repeated commit answers the same');
    // The safety-net job was enqueued for later; run now, it finds nothing left to do.
    const job = await store.claimJob({ kinds: ['ingest'], owner: 'w', leaseMs: 1000, now: new Date(Date.now() + 11 * 60_000) });
    assert.deepEqual(job?.payload, { upload_id: id });
    await store.finishJob({ id: job!.id, owner: 'w', now: systemClock.now(), outcome: 'succeeded' });
  });

  it('fails the session, keeping nothing, when the bytes are not the digest named', async () => {
    const id = await open();
    await send(id, 1, random(5000));
    const claimed = sha256(random(5000));
    await rejectsWith(services.uploads.commit({ repository, uploadId: id, digest: claimed, signal: neverAborted() }), 'invalid', 'digest_mismatch');
    assert.equal((await store.getUpload(id))?.state, 'failed');
    assert.equal(await store.getBlob(claimed), undefined);
    assert.equal(await services.blobs.stat(claimed), undefined);
    const job = await store.claimJob({ kinds: ['ingest'], owner: 'w', leaseMs: 1000, now: new Date(Date.now() + 11 * 60_000) });
    await store.finishJob({ id: job!.id, owner: 'w', now: systemClock.now(), outcome: 'succeeded' });
  });
});
