import type { Logger } from 'pino';
import type { Cas } from '../../blobs/cas.ts';
import { groupAttachments, type Manifest } from '../../domain/catalog.ts';
import type { PublishJob, PublishStepName } from '../../domain/publish.ts';
import type { Clock } from '../../lib/clock.ts';
import type { PublishDriver } from '../../store/catalog-repository.ts';
import type { MetadataStore } from '../../store/metadata-store.ts';

export interface StepDeps {
  store: Pick<MetadataStore, 'listArtifacts' | 'listAttachments' | 'getBlob' | 'putIncusIndex'>;
  blobs: Pick<Cas, 'open'>;
  clock: Clock;
  log: Logger;
}

/** The version's artifacts with their attachments. */
export async function versionContents(store: StepDeps['store'], versionId: string): Promise<Manifest['artifacts']> {
  const artifacts = await store.listArtifacts(versionId);
  return groupAttachments(artifacts, await store.listAttachments(artifacts.map((a) => a.id)));
}

/** What a step achieved; the job driver records it. */
export interface StepResult {
  outcome: 'succeeded' | 'skipped';
  /** Recording this step's success publishes the version (finalize_publish). */
  publishes?: true;
}

/** The publish job a step works for, who drives it, and when to stop. */
export interface StepContext {
  job: PublishJob;
  driver: PublishDriver;
  signal: AbortSignal;
}

/**
 * One blocking step of a publish job. `run` never writes progress, and what it stores of its
 * results it stores idempotently (under the driver's lease), so it can run again after a crash. A `DomainError` it throws fails the job with
 * that reason (`invalid` for a verdict on the content, `not_found` for bytes missing from
 * storage, ...), except `unavailable`, which the runner retries like any unexpected error.
 */
export interface PublishStepHandler {
  name: PublishStepName;
  run(deps: StepDeps, context: StepContext): Promise<StepResult>;
}
