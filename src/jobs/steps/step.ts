import type { Logger } from 'pino';
import type { BlobStore } from '../../blobs/blob-store.ts';
import type { Digest } from '../../domain/digest.ts';
import type { PublishJob, PublishStepName } from '../../domain/publish.ts';
import type { Clock } from '../../lib/clock.ts';
import type { MetadataStore } from '../../store/metadata-store.ts';

export interface StepDeps {
  store: Pick<MetadataStore, 'listArtifacts' | 'listAttachments' | 'getBlob' | 'putIncusIndex' | 'finalizePublish'>;
  blobs: Pick<BlobStore, 'open'>;
  clock: Clock;
  log: Logger;
}

/**
 * One blocking step of a publish job. `run` must be safe to run again after a crash (it may
 * have half-run before). A `DomainError` it throws fails the job with that reason (`invalid`
 * for a verdict on the content, `not_found` for bytes missing from storage, ...), except
 * `unavailable`, which the runner retries like any unexpected error. `completesJob` marks the
 * step whose own transaction also records the step's and the job's success.
 */
export interface PublishStepHandler {
  name: PublishStepName;
  completesJob?: boolean;
  run(deps: StepDeps, job: PublishJob, signal: AbortSignal): Promise<'succeeded' | 'skipped'>;
}

/** A blob's bytes as fresh chunks (the consumer may keep them). */
export async function* blobChunks(blobs: Pick<BlobStore, 'open'>, digest: Digest, signal: AbortSignal): AsyncGenerator<Buffer> {
  const reader = await blobs.open(digest);
  try {
    for (;;) {
      signal.throwIfAborted();
      const chunk = Buffer.allocUnsafe(1 << 20);
      const n = await reader.read(chunk);
      if (n === 0) return;
      yield chunk.subarray(0, n);
    }
  } finally {
    await reader.close();
  }
}
