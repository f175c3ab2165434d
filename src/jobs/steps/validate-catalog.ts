import { describeArtifact } from '../../domain/catalog.ts';
import type { Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';
import { versionContents, type PublishStepHandler } from './step.ts';

/**
 * `validate_catalog`: "every referenced digest is a ready, trusted blob with the recorded size;
 * the manifest is consistent". Names the first digest that is not.
 */
export const validateCatalog: PublishStepHandler = {
  name: 'validate_catalog',
  async run({ store }, { job }) {
    const contents = await versionContents(store, job.versionId);
    if (contents.length === 0) throw new DomainError('invalid', 'version_empty', `version ${job.version} has no artifact`);
    const references: { what: string; digest: Digest; size: number }[] = contents.flatMap(({ artifact: a, attachments }) => [
      { what: `artifact ${describeArtifact(a)}`, digest: a.primaryBlobDigest, size: a.primaryBlobSize },
      ...attachments.map((x) => ({ what: `attachment ${x.name} of artifact ${describeArtifact(a)}`, digest: x.blobDigest, size: x.blobSize })),
    ]);
    for (const ref of references) {
      const blob = await store.getBlob(ref.digest);
      if (!blob) {
        throw new DomainError('invalid', 'blob_not_ready', `${ref.what} references ${ref.digest}, which is not a trusted blob yet; wait until its upload is ready, then retry this job`);
      }
      if (blob.size !== ref.size) throw new DomainError('invalid', 'blob_size_mismatch', `${ref.what} records ${ref.size} bytes, but ${ref.digest} has ${blob.size}`);
    }
    return { outcome: 'succeeded' };
  },
};
