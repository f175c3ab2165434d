import type { Principal } from '../domain/auth.ts';
import { DomainError } from '../domain/errors.ts';
import type { AuditLog } from './audit.ts';
import { newJob, PUBLISH_JOB } from '../domain/job.ts';
import { PUBLISH_STEPS, type PublishJob, type PublishStepName } from '../domain/publish.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { CatalogService } from './catalog.ts';
import type { ServiceDeps } from './deps.ts';

export interface PublishServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  audit: AuditLog;
  store: Pick<MetadataStore, 'startPublish' | 'getPublishJob' | 'retryPublishJob'>;
  catalog: Pick<CatalogService, 'version'>;
  /** Called after a durable job was enqueued, to wake the local job runner. */
  onJobEnqueued: () => void;
}

export type PublishService = ReturnType<typeof createPublishService>;

/** Publishing a draft, and the publish jobs that carry it out. */
export function createPublishService(deps: PublishServiceDeps) {
  const { store, clock, newId } = deps;
  const queue = (publishJobId: string) => newJob(PUBLISH_JOB, newId(), { publishJobId });

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
    async publish(actor: Principal, name: string, v: string): Promise<PublishJob> {
      const { version } = await deps.catalog.version(name, v);
      const jobId = newId();
      const stepIds = Object.fromEntries(PUBLISH_STEPS.map((s) => [s, newId()])) as Record<PublishStepName, string>;
      const started = await store.startPublish({ versionId: version.id, jobId, stepIds, queue: queue(jobId), now: clock.now() });
      if (started.created) {
        deps.audit({ action: 'version.publish', actor: actor.id, target: `${name}:${v}`, publishJobId: started.jobId });
        deps.onJobEnqueued();
      }
      return job(started.jobId);
    },

    /** "Retry requeues from the first failed blocking step. Earlier successful steps are not re-run." */
    async retry(actor: Principal, id: string): Promise<PublishJob> {
      const current = await job(id);
      if (!(await store.retryPublishJob({ jobId: id, queue: queue(id), now: clock.now() }))) {
        throw new DomainError('precondition_failed', 'publish_job_not_failed', `publish job ${id} is ${current.state}; only a failed job can be retried`);
      }
      deps.audit({ action: 'publish_job.retry', actor: actor.id, target: id });
      deps.onJobEnqueued();
      return job(id);
    },
  };
}
