import { createHash } from 'node:crypto';
import { describeArtifact, INCUS_METADATA_ATTACHMENT } from '../../domain/catalog.ts';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import { incusArchitecture } from '../../domain/incus.ts';
import type { IncusIndexEntry } from '../../domain/publish.ts';
import { readIncusMetadata } from './incus-metadata.ts';
import { blobChunks, type PublishStepHandler } from './step.ts';

/**
 * `incus_index`: for every eligible artifact (a qcow2 with an `incus.tar.xz` attachment),
 * computes what the Simple Streams feed needs, so that building the feed never reads bytes:
 * the combined sha256 of the metadata bytes followed by the disk bytes (the Incus
 * fingerprint) and the `metadata.yaml` facts. Skipped when no artifact is eligible.
 */
export const incusIndex: PublishStepHandler = {
  name: 'incus_index',
  async run({ store, blobs, clock }, job, signal) {
    const artifacts = await store.listArtifacts(job.versionId);
    const attachments = await store.listAttachments(artifacts.map((a) => a.id));
    const eligible = artifacts.flatMap((artifact) => {
      const metadata = attachments.find((x) => x.artifactId === artifact.id && x.name === INCUS_METADATA_ATTACHMENT);
      return artifact.format === 'qcow2' && metadata ? [{ artifact, metadata }] : [];
    });
    if (eligible.length === 0) return 'skipped';
    const entries: IncusIndexEntry[] = [];
    for (const { artifact, metadata } of eligible) {
      const about = (e: unknown): never => {
        if (isDomainError(e) && (e.kind === 'invalid' || e.kind === 'not_found')) throw new DomainError(e.kind, e.code, `artifact ${describeArtifact(artifact)}: ${e.detail}`);
        throw e;
      };
      const facts = await readIncusMetadata(blobChunks(blobs, metadata.blobDigest, signal)).catch(about);
      const arch = incusArchitecture(artifact.architecture);
      if (!arch) throw new DomainError('invalid', 'architecture_unknown_to_incus', `artifact ${describeArtifact(artifact)}: Incus knows no architecture named ${artifact.architecture}`);
      if (incusArchitecture(facts.architecture) !== arch) {
        throw new DomainError('invalid', 'architecture_mismatch', `artifact ${describeArtifact(artifact)}: its metadata.yaml is for architecture ${facts.architecture}`);
      }
      const combined = createHash('sha256');
      try {
        for (const digest of [metadata.blobDigest, artifact.primaryBlobDigest]) {
          for await (const chunk of blobChunks(blobs, digest, signal)) combined.update(chunk);
        }
      } catch (e) {
        about(e);
      }
      entries.push({ artifactId: artifact.id, combinedSha256: combined.digest('hex'), ...facts });
    }
    await store.putIncusIndex(entries, clock.now());
    return 'succeeded';
  },
};
