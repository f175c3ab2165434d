import { DomainError } from '../domain/errors.ts';
import { PUBLISH_JOB, PUBLISH_STEPS, type PublishJob, type PublishStepName } from '../domain/publish.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { CatalogService } from './catalog.ts';
import type { ServiceDeps } from './deps.ts';

export interface PublishServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  store: Pick<MetadataStore, 'startPublish' | 'getPublishJob' | 'retryPublishJob'>;
  catalog: Pick<CatalogService, 'version'>;
  /** Called after a durable job was enqueued, to wake the local job runner. */
  onJobEnqueued: () => void;
}

export type PublishService = ReturnType<typeof createPublishService>;

/** Publishing a draft, and the publish jobs that carry it out. */
export function createPublishService(deps: PublishServiceDeps) {
  const { store, clock, newId } = deps;
  const queue = (publishJobId: string) => ({ id: newId(), kind: PUBLISH_JOB, payload: { publish_job_id: publishJobId } });

  async function job(id: string): Promise<PublishJob> {
    const found = await store.getPublishJob(id);
    if (!found) throw new DomainError('not_found', 'publish_job_not_found', `publish job ${id} does not exist`);
    return found;
  }

  return {
    job,

    /**
     * "Publishing freezes the manifest and enqueues the durable publish job." Re-issuing it for
     * a publishing or published version returns that version's job without enqueueing another.
     */
    async publish(name: string, v: string): Promise<PublishJob> {
      const { version } = await deps.catalog.version(name, v);
      const jobId = newId();
      const stepIds = Object.fromEntries(PUBLISH_STEPS.map((s) => [s, newId()])) as Record<PublishStepName, string>;
      const started = await store.startPublish({ versionId: version.id, jobId, stepIds, queue: queue(jobId), now: clock.now() });
      if (started.created) deps.onJobEnqueued();
      return job(started.jobId);
    },

    /** "Retry requeues from the first failed blocking step. Earlier successful steps are not re-run." */
    async retry(id: string): Promise<PublishJob> {
      const current = await job(id);
      if (!(await store.retryPublishJob({ jobId: id, queue: queue(id), now: clock.now() }))) {
        throw new DomainError('precondition_failed', 'publish_job_not_failed', `publish job ${id} is ${current.state}; only a failed job can be retried`);
      }
      deps.onJobEnqueued();
      return job(id);
    },
  };
}
