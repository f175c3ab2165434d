import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createCas } from '../../src/blobs/cas.ts';
import { createFsDriver } from '../../src/blobs/fs/fs-driver.ts';
import { PUBLISH_STEPS, type PublishStepName } from '../../src/domain/publish.ts';
import { publishJob } from '../../src/jobs/publish-job.ts';
import { createJobRunner } from '../../src/jobs/runner.ts';
import { systemClock } from '../../src/lib/clock.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { openTestStore } from '../helpers/store.ts';

const log = pino({ level: 'silent' });

describe('publish job driver', () => {
  let dir: string;
  let store: MetadataStore;
  before(async () => {
    dir = await makeDataDir();
    store = await openTestStore(dir);
  });
  after(async () => {
    await store.close();
    await removeDir(dir);
  });

  it('lets only the durable job the publish job names drive it: a stale one changes nothing', async () => {
    const now = new Date();
    const digest = sha256(random(10));
    const uploadId = randomUUID();
    await store.insertUpload({ id: uploadId, expectedDigest: digest, expectedSize: 10, state: 'ingesting', revision: 0, expiresAt: now, createdAt: now, updatedAt: now });
    await store.markUploadReady({ uploadId, blob: { digest, size: 10 }, now });
    const imageId = randomUUID();
    const versionId = randomUUID();
    await store.insertImage({ id: imageId, name: 'fenced', createdAt: now, updatedAt: now });
    await store.insertVersion({ id: versionId, imageId, version: '1', state: 'draft', createdAt: now, updatedAt: now });
    const artifact = { id: randomUUID(), versionId, variant: 'default', operatingSystem: 'debian', architecture: 'amd64', format: 'raw' as const, primaryBlobDigest: digest, primaryBlobSize: 10, primaryMediaType: 'application/octet-stream', createdAt: now, updatedAt: now };
    await store.insertArtifact({ artifact, now });

    // A durable job left over from an earlier run (re-queued after a failed bookkeeping write),
    // and the one the publish job names as its driver, both runnable at once.
    const publishJobId = randomUUID();
    await store.enqueueJob({ id: randomUUID(), kind: 'publish', payload: { publish_job_id: publishJobId }, now });
    const stepIds = Object.fromEntries(PUBLISH_STEPS.map((s) => [s, randomUUID()])) as Record<PublishStepName, string>;
    await store.startPublish({ versionId, jobId: publishJobId, stepIds, queue: { id: randomUUID(), kind: 'publish', payload: { publish_job_id: publishJobId } }, now });

    const blobs = createCas(await createFsDriver({ root: join(dir, 'blobs') }));
    const runner = createJobRunner({ store, workers: [{ handler: publishJob({ store, blobs, clock: systemClock, log, failpoint: async () => {} }), concurrency: 2 }], leaseMs: 5000, pollMs: 20, clock: systemClock, log });
    await runner.start();
    try {
      const deadline = Date.now() + 5000;
      while ((await store.getPublishJob(publishJobId))?.state !== 'succeeded') {
        assert.ok(Date.now() < deadline, 'the publish job finished');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await runner.stop();
    }
    const job = (await store.getPublishJob(publishJobId))!;
    assert.deepEqual(
      job.steps.map((s) => [s.name, s.state, s.attemptCount]),
      [
        ['validate_catalog', 'succeeded', 1],
        ['incus_index', 'skipped', 1],
        ['finalize_publish', 'succeeded', 1],
      ],
      'each step ran once: the stale durable job did not drive',
    );
    assert.equal((await store.getVersionById(versionId))!.state, 'published');
  });
});
