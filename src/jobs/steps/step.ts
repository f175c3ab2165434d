import type { Logger } from 'pino';
import type { BlobStore } from '../../blobs/blob-store.ts';
import type { IncusIndexEntry, PublishJob, PublishStepName } from '../../domain/publish.ts';
import type { Clock } from '../../lib/clock.ts';
import type { MetadataStore } from '../../store/metadata-store.ts';

export interface StepDeps {
  store: Pick<MetadataStore, 'listArtifacts' | 'listAttachments' | 'getBlob'>;
  blobs: Pick<BlobStore, 'open'>;
  clock: Clock;
  log: Logger;
}

/** What a step achieved; the job driver records it in the same transaction as the step's success. */
export interface StepResult {
  outcome: 'succeeded' | 'skipped';
  /** Entries for the Incus feed (incus_index). */
  incusIndex?: IncusIndexEntry[];
  /** Recording this step's success publishes the version (finalize_publish). */
  publishes?: true;
}

/**
 * One blocking step of a publish job. `run` computes and returns its result without writing
 * progress, so it can run again after a crash. A `DomainError` it throws fails the job with
 * that reason (`invalid` for a verdict on the content, `not_found` for bytes missing from
 * storage, ...), except `unavailable`, which the runner retries like any unexpected error.
 */
export interface PublishStepHandler {
  name: PublishStepName;
  run(deps: StepDeps, job: PublishJob, signal: AbortSignal): Promise<StepResult>;
}
