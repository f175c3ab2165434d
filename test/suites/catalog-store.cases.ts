import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { Artifact, Image, ImageVersion } from '../../src/domain/catalog.ts';
import { PUBLISH_STEPS, type PublishStepName } from '../../src/domain/publish.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { at, rejectsWith, T0 } from './common.ts';


export const image = (name: string): Image => ({ id: randomUUID(), name, createdAt: T0, updatedAt: T0 });
export const version = (imageId: string, v: string): ImageVersion => ({ id: randomUUID(), imageId, version: v, state: 'draft', createdAt: T0, updatedAt: T0 });
export const artifact = (versionId: string, over: Partial<Artifact> = {}): Artifact => ({
  id: randomUUID(),
  versionId,
  variant: 'default',
  operatingSystem: 'debian',
  architecture: 'amd64',
  format: 'qcow2',
  primaryBlobDigest: sha256(random(8)),
  primaryBlobSize: 8,
  primaryMediaType: 'application/x-qemu-disk',
  createdAt: T0,
  updatedAt: T0,
  ...over,
});
export const stepIds = () => Object.fromEntries(PUBLISH_STEPS.map((s) => [s, randomUUID()])) as Record<PublishStepName, string>;
export const queue = (publishJobId: string) => ({ id: randomUUID(), kind: 'publish', payload: { publish_job_id: publishJobId } });

/** Drafts and publications made through the repository, as the services would. */
export function catalogFixtures(store: () => MetadataStore) {
  /** An image with a draft holding one artifact. */
  async function draft(name = `img-${randomUUID().slice(0, 8)}`) {
    const img = image(name);
    await store().insertImage(img);
    const v = version(img.id, '1.0');
    await store().insertVersion(v);
    const a = artifact(v.id);
    await store().insertArtifact({ artifact: a, now: at(1) });
    return { img, v, a };
  }
  /** Starts publishing and claims the durable job that drives it, as a worker would. */
  async function startAndClaim(versionId: string, now: Date, owner = 'worker') {
    const jobId = randomUUID();
    await store().startPublish({ versionId, jobId, stepIds: stepIds(), queue: queue(jobId), now });
    const durable = (await store().claimJob({ kinds: ['publish'], owner, leaseMs: 60_000, now }))!;
    return { jobId, driver: { jobId: durable.id, owner } };
  }
  /** Ends the durable job a test claimed, so no lease is left behind. */
  const release = (driver: { jobId: string; owner: string }, now: Date) => store().finishJob({ id: driver.jobId, owner: driver.owner, now, outcome: 'succeeded' });
  /** Runs a publish job to success through the repository. */
  async function publish(versionId: string, now: Date) {
    const { jobId, driver } = await startAndClaim(versionId, now);
    assert.equal(await store().finalizePublish({ jobId, driver, now }), true);
    await release(driver, now);
    return jobId;
  }
  return { draft, startAndClaim, release, publish };
}

/** CatalogRepository and PublishRepository cases of the MetadataStore conformance suite. */
export function describeCatalogCases(store: () => MetadataStore): void {
  const { draft, startAndClaim, release, publish } = catalogFixtures(store);

  describe('catalog', () => {
    it('keeps image names and versions unique per image', async () => {
      const { img, v } = await draft('unique');
      await rejectsWith(store().insertImage(image('unique')), 'conflict');
      await rejectsWith(store().insertVersion(version(img.id, '1.0')), 'conflict');
      const other = image('other');
      await store().insertImage(other);
      await store().insertVersion(version(other.id, '1.0'));
      assert.deepEqual(await store().getImage('unique'), img);
      assert.deepEqual(await store().getVersion(img.id, '1.0'), { ...v, updatedAt: at(1) }, 'adding an artifact touches the version');
      assert.equal(await store().getImage('missing'), undefined);
    });

    it('lists only images and versions that are published, in a stable order', async () => {
      const first = await draft('zeta');
      const second = await draft('alpha');
      await draft('hidden');
      assert.deepEqual(await store().listPublishedImages(), []);
      await publish(first.v.id, at(10));
      await publish(second.v.id, at(5));
      assert.deepEqual((await store().listPublishedImages()).map((i) => i.name), ['alpha', 'zeta']);
      const later = version(first.img.id, '0.9');
      await store().insertVersion(later);
      await store().insertArtifact({ artifact: artifact(later.id), now: at(11) });
      await publish(later.id, at(20));
      assert.deepEqual((await store().listPublishedVersions(first.img.id)).map((v) => [v.version, v.publishedAt]), [['1.0', at(10)], ['0.9', at(20)]]);
    });

    it('changes a version only while it is a draft, and keeps one artifact per key and one attachment per name', async () => {
      const { v, a } = await draft();
      await rejectsWith(store().insertArtifact({ artifact: artifact(v.id), now: at(2) }), 'conflict');
      const arm = artifact(v.id, { architecture: 'arm64' });
      await store().insertArtifact({ artifact: arm, now: at(2) });
      const x = { id: randomUUID(), artifactId: a.id, name: 'incus.tar.xz', mediaType: 'application/x-incus-metadata', blobDigest: sha256(random(4)), blobSize: 4, createdAt: T0, updatedAt: T0 };
      await store().insertAttachment({ versionId: v.id, attachment: x, now: at(3) });
      await rejectsWith(store().insertAttachment({ versionId: v.id, attachment: { ...x, id: randomUUID() }, now: at(3) }), 'conflict');
      await rejectsWith(store().insertAttachment({ versionId: v.id, attachment: { ...x, id: randomUUID(), artifactId: randomUUID() }, now: at(3) }), 'not_found');
      assert.deepEqual(await store().listAttachments([a.id, arm.id]), [x]);
      assert.deepEqual(await store().getAttachment(a.id, x.id), x);
      assert.deepEqual((await store().listArtifacts(v.id)).map((y) => y.id).sort(), [a.id, arm.id].sort());
      assert.equal(await store().deleteArtifact({ versionId: v.id, artifactId: arm.id, now: at(4) }), true);
      assert.equal(await store().deleteArtifact({ versionId: v.id, artifactId: arm.id, now: at(4) }), false);
      await publish(v.id, at(5));
      await rejectsWith(store().insertArtifact({ artifact: artifact(v.id, { variant: 'late' }), now: at(6) }), 'precondition_failed', 'version_not_draft');
      await rejectsWith(store().deleteArtifact({ versionId: v.id, artifactId: a.id, now: at(6) }), 'precondition_failed');
      await rejectsWith(store().deleteAttachment({ versionId: v.id, artifactId: a.id, attachmentId: x.id, now: at(6) }), 'precondition_failed');
      await rejectsWith(store().insertArtifact({ artifact: artifact(randomUUID()), now: at(6) }), 'not_found');
      assert.equal((await store().listAttachments([a.id])).length, 1);
    });

    it('points aliases at published versions only, and moves them', async () => {
      const { img, v } = await draft();
      await rejectsWith(store().putAlias({ id: randomUUID(), imageId: img.id, alias: 'latest', versionId: v.id, now: at(2) }), 'precondition_failed', 'version_not_published');
      await publish(v.id, at(3));
      const two = version(img.id, '2.0');
      await store().insertVersion(two);
      await store().insertArtifact({ artifact: artifact(two.id), now: at(4) });
      await publish(two.id, at(5));
      const first = await store().putAlias({ id: randomUUID(), imageId: img.id, alias: 'latest', versionId: two.id, now: at(6) });
      const moved = await store().putAlias({ id: randomUUID(), imageId: img.id, alias: 'latest', versionId: v.id, now: at(7) });
      assert.equal(moved.id, first.id);
      assert.deepEqual([moved.version, moved.createdAt, moved.updatedAt], ['1.0', at(6), at(7)]);
      await store().putAlias({ id: randomUUID(), imageId: img.id, alias: 'beta', versionId: two.id, now: at(8) });
      assert.deepEqual((await store().listAliases(img.id)).map((x) => [x.alias, x.version]), [['beta', '2.0'], ['latest', '1.0']]);
      assert.equal(await store().deleteAlias(img.id, 'beta', at(7)), true);
      assert.equal(await store().deleteAlias(img.id, 'beta', at(8)), false);
      assert.equal(await store().getAlias(img.id, 'beta'), undefined);
    });

    it('knows a digest expected by an unfinished upload session', async () => {
      const digest = sha256(random(10));
      const base = { expectedDigest: digest, expectedSize: 10, revision: 0, expiresAt: at(100), createdAt: T0, updatedAt: T0 };
      assert.equal(await store().hasLiveUpload({ digest, size: 10, now: at(1) }), false);
      await store().insertUpload({ ...base, id: randomUUID(), state: 'aborted' });
      assert.equal(await store().hasLiveUpload({ digest, size: 10, now: at(1) }), false);
      await store().insertUpload({ ...base, id: randomUUID(), state: 'uploading' });
      assert.equal(await store().hasLiveUpload({ digest, size: 10, now: at(1) }), true);
      assert.equal(await store().hasLiveUpload({ digest, size: 11, now: at(1) }), false);
      assert.equal(await store().hasLiveUpload({ digest, size: 10, now: at(100) }), false, 'an expired session expects nothing');
      await store().insertUpload({ ...base, id: randomUUID(), state: 'ingesting', expiresAt: at(1) });
      assert.equal(await store().hasLiveUpload({ digest, size: 10, now: at(100) }), true, 'completed sessions do not expire');
    });
  });

  describe('feed revision', () => {
    it('grows with every publication and alias change, at the time of the change, even within one millisecond', async () => {
      const start = await store().catalogRevision();
      assert.deepEqual(start, { revision: 0, changedAt: new Date(0) });
      const { img, v } = await draft();
      assert.deepEqual(await store().catalogRevision(), start, 'drafts are not in the feed');
      await publish(v.id, at(2));
      assert.deepEqual(await store().catalogRevision(), { revision: 1, changedAt: at(2) });
      await store().putAlias({ id: randomUUID(), imageId: img.id, alias: 'stable', versionId: v.id, now: at(3) });
      await store().putAlias({ id: randomUUID(), imageId: img.id, alias: 'stable', versionId: v.id, now: at(3) });
      assert.deepEqual(await store().catalogRevision(), { revision: 3, changedAt: at(3) });
      assert.equal(await store().deleteAlias(img.id, 'stable', at(4)), true);
      assert.equal(await store().deleteAlias(img.id, 'stable', at(5)), false);
      assert.deepEqual(await store().catalogRevision(), { revision: 4, changedAt: at(4) });
    });
  });

  describe('publish jobs', () => {
    it('starts one job per version, atomically with publishing, and refuses an empty draft', async () => {
      const img = image('empty');
      await store().insertImage(img);
      const empty = version(img.id, '1');
      await store().insertVersion(empty);
      await rejectsWith(store().startPublish({ versionId: empty.id, jobId: randomUUID(), stepIds: stepIds(), queue: queue('x'), now: at(1) }), 'precondition_failed', 'version_empty');
      const { v } = await draft();
      const jobId = randomUUID();
      const q = queue(jobId);
      assert.deepEqual(await store().startPublish({ versionId: v.id, jobId, stepIds: stepIds(), queue: q, now: at(2) }), { jobId, created: true });
      assert.deepEqual(await store().startPublish({ versionId: v.id, jobId: randomUUID(), stepIds: stepIds(), queue: queue('y'), now: at(3) }), { jobId, created: false });
      assert.equal((await store().getVersionById(v.id))!.state, 'publishing');
      assert.equal((await store().getJob(q.id))!.state, 'queued', 'the durable job was enqueued with it');
      const job = (await store().getPublishJob(jobId))!;
      assert.equal(job.state, 'queued');
      assert.equal(job.version, '1.0');
      assert.deepEqual(job.steps.map((s) => [s.name, s.state, s.sequence, s.attemptCount, s.blocking]), [
        ['validate_catalog', 'queued', 0, 0, true],
        ['incus_index', 'queued', 1, 0, true],
        ['finalize_publish', 'queued', 2, 0, true],
      ]);
      const winner = await Promise.all(Array.from({ length: 4 }, () => store().startPublish({ versionId: v.id, jobId: randomUUID(), stepIds: stepIds(), queue: queue('z'), now: at(4) })));
      assert.deepEqual(new Set(winner.map((w) => w.jobId)), new Set([jobId]));
    });

    it('counts attempts, fails with a reason, retries from the failed step and finalizes once', async () => {
      const { v } = await draft();
      const { jobId, driver } = await startAndClaim(v.id, at(1));
      assert.equal(await store().startStep({ jobId, step: 'validate_catalog', driver, now: at(2) }), true);
      assert.equal(await store().finishStep({ jobId, step: 'validate_catalog', outcome: 'succeeded', driver, now: at(3) }), true);
      await store().startStep({ jobId, step: 'incus_index', driver, now: at(4) });
      assert.equal(await store().retryPublishJob({ jobId, queue: queue(jobId), now: at(5) }), false, 'only a failed job can be retried');
      assert.equal(await store().failStep({ jobId, step: 'incus_index', reason: 'metadata.yaml missing', driver, now: at(5) }), true);
      await release(driver, at(5));
      let job = (await store().getPublishJob(jobId))!;
      assert.deepEqual([job.state, job.failedStep, job.reason, job.finishedAt], ['failed', 'incus_index', 'metadata.yaml missing', at(5)]);
      assert.deepEqual([job.startedAt, job.steps[1]!.failureMessage, job.steps[1]!.attemptCount], [at(2), 'metadata.yaml missing', 1]);
      const retry = queue(jobId);
      assert.equal(await store().retryPublishJob({ jobId, queue: retry, now: at(6) }), true);
      job = (await store().getPublishJob(jobId))!;
      assert.deepEqual(job.steps.map((s) => s.state), ['succeeded', 'queued', 'queued']);
      assert.deepEqual([job.state, job.failedStep, job.reason], ['queued', undefined, undefined]);
      const claimed = (await store().claimJob({ kinds: ['publish'], owner: 'second', leaseMs: 60_000, now: at(7) }))!;
      assert.equal(claimed.id, retry.id, 'the retry enqueued a new durable job');
      const second = { jobId: claimed.id, owner: 'second' };
      assert.equal(await store().startStep({ jobId, step: 'incus_index', driver, now: at(7) }), false, 'the first driver was superseded by the retry');
      await store().startStep({ jobId, step: 'incus_index', driver: second, now: at(7) });
      const entry = { artifactId: (await store().listArtifacts(v.id))[0]!.id, combinedSha256: 'ab'.repeat(32), architecture: 'x86_64', creationDate: 1795400000, properties: { os: 'Debian' } };
      assert.equal(await store().putIncusIndex({ entries: [entry], jobId, driver: second, now: at(8) }), true);
      assert.equal(await store().finishStep({ jobId, step: 'incus_index', outcome: 'succeeded', driver: second, now: at(8) }), true);
      assert.deepEqual(await store().getIncusIndex([entry.artifactId]), [entry], 'the step result is stored');
      await store().startStep({ jobId, step: 'finalize_publish', driver: second, now: at(9) });
      assert.equal(await store().finalizePublish({ jobId, driver: second, now: at(10) }), true);
      job = (await store().getPublishJob(jobId))!;
      assert.deepEqual(job.steps.map((s) => [s.state, s.attemptCount]), [['succeeded', 1], ['succeeded', 2], ['succeeded', 1]]);
      assert.deepEqual([job.state, job.finishedAt], ['succeeded', at(10)]);
      const published = (await store().getVersionById(v.id))!;
      assert.deepEqual([published.state, published.publishedAt], ['published', at(10)]);
      await release(second, at(11));
    });

    it('changes nothing for a worker that lost its lease', async () => {
      const { v } = await draft();
      const { jobId, driver } = await startAndClaim(v.id, at(1));
      await store().startStep({ jobId, step: 'validate_catalog', driver, now: at(2) });
      const stale = { ...driver, owner: 'somebody-else' };
      assert.equal(await store().finishStep({ jobId, step: 'validate_catalog', outcome: 'succeeded', driver: stale, now: at(3) }), false);
      assert.equal(await store().failStep({ jobId, step: 'validate_catalog', reason: 'x', driver: stale, now: at(3) }), false);
      assert.equal(await store().finalizePublish({ jobId, driver: stale, now: at(3) }), false);
      assert.equal(await store().putIncusIndex({ entries: [], jobId, driver: stale, now: at(3) }), false);
      const job = (await store().getPublishJob(jobId))!;
      assert.deepEqual([job.state, job.steps[0]!.state], ['running', 'running']);
      assert.equal((await store().getVersionById(v.id))!.state, 'publishing');
      await release(driver, at(4));
      assert.equal(await store().finishStep({ jobId, step: 'validate_catalog', outcome: 'succeeded', driver, now: at(5) }), false, 'a finished durable job drives nothing');
    });

    it('stores the Incus index per artifact, replacing earlier entries', async () => {
      const { v, a } = await draft();
      const { jobId, driver } = await startAndClaim(v.id, at(1));
      const entry = { artifactId: a.id, combinedSha256: 'ab'.repeat(32), architecture: 'x86_64', creationDate: 1795400000, properties: { os: 'Debian', release: 'bookworm' } };
      await store().putIncusIndex({ entries: [entry], jobId, driver, now: at(2) });
      await store().putIncusIndex({ entries: [{ ...entry, combinedSha256: 'cd'.repeat(32) }], jobId, driver, now: at(3) });
      assert.deepEqual(await store().getIncusIndex([a.id, randomUUID()]), [{ ...entry, combinedSha256: 'cd'.repeat(32) }]);
      assert.deepEqual(await store().getIncusIndex([]), []);
      await release(driver, at(4));
    });
  });
}
