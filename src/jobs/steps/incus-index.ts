import { createHash } from 'node:crypto';
import { INCUS_METADATA_ATTACHMENT, incusImageType } from '../../domain/catalog.ts';
import type { IncusIndexEntry } from '../../domain/publish.ts';
import { hashBlobs } from '../../services/blob-bytes.ts';
import { inspectIncusMetadata } from '../../services/incus-metadata.ts';
import { versionContents, type PublishStepHandler } from './step.ts';

/**
 * `incus_index`: for every eligible artifact (a qcow2 VM disk or a squashfs container root
 * filesystem, with an `incus.tar.xz` attachment), computes what the Simple Streams feed needs,
 * so that building the feed never reads bytes: the combined sha256 of the metadata bytes
 * followed by the primary blob's bytes (the Incus fingerprint, `combined_disk-kvm-img_sha256`
 * or `combined_squashfs_sha256` in the feed) and the `metadata.yaml` facts. Skipped when no
 * artifact is eligible.
 */
export const incusIndex: PublishStepHandler = {
  name: 'incus_index',
  async run({ store, blobs, clock }, { job, driver, signal }) {
    const eligible = (await versionContents(store, job.versionId)).flatMap(({ artifact, attachments }) => {
      const metadata = attachments.find((x) => x.name === INCUS_METADATA_ATTACHMENT);
      return incusImageType(artifact.format) && metadata ? [{ artifact, metadata }] : [];
    });
    if (eligible.length === 0) return { outcome: 'skipped' };
    const incusIndex: IncusIndexEntry[] = [];
    for (const { artifact, metadata } of eligible) {
      const facts = await inspectIncusMetadata(blobs, artifact, metadata.blobDigest, signal);
      const combined = createHash('sha256');
      await hashBlobs(combined, blobs, [metadata.blobDigest, artifact.primaryBlobDigest], signal);
      incusIndex.push({ artifactId: artifact.id, combinedSha256: combined.digest('hex'), ...facts });
    }
    await store.putIncusIndex({ entries: incusIndex, driver, jobId: job.id, now: clock.now() });
    return { outcome: 'succeeded' };
  },
};
