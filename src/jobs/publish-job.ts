import type { Logger } from 'pino';
import { isDomainError } from '../domain/errors.ts';
import { PUBLISH_JOB } from '../domain/publish.ts';
import type { Clock } from '../lib/clock.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { JobHandler } from './runner.ts';
import { PUBLISH_STEP_HANDLERS } from './steps/index.ts';
import type { StepDeps } from './steps/step.ts';

export interface PublishJobDeps extends StepDeps {
  store: StepDeps['store'] & Pick<MetadataStore, 'getPublishJob' | 'startStep' | 'finishStep' | 'failStep'>;
  clock: Clock;
  log: Logger;
  failpoint: (name: string) => Promise<void>;
}

/**
 * Drives a publish job through its blocking steps in order. A step that succeeded (or was
 * skipped) is never run again, also not after a crash or a retry; the step that was running
 * when a process died runs again (counted as another attempt). A step's `DomainError` (a
 * verdict on the content, or an operator-visible problem such as a blob missing from storage)
 * fails the job with its reason, for the operator to fix and retry. Transient (`unavailable`)
 * and unexpected errors are retried by the runner first; when it gives up, the step fails with
 * the last error.
 */
export function publishJob(deps: PublishJobDeps): JobHandler {
  const { store, clock } = deps;
  const publishJobId = (payload: Record<string, unknown>) => String(payload.publish_job_id);
  return {
    kind: PUBLISH_JOB,
    maxAttempts: 5,

    async run(job, signal) {
      const current = await store.getPublishJob(publishJobId(job.payload));
      if (!current || current.state === 'succeeded' || current.state === 'failed') return;
      for (const step of current.steps) {
        if (step.state === 'succeeded' || step.state === 'skipped') continue;
        const handler = PUBLISH_STEP_HANDLERS[step.name];
        await store.startStep({ jobId: current.id, step: step.name, now: clock.now() });
        await deps.failpoint(`publish-${step.name}`);
        let outcome: 'succeeded' | 'skipped';
        try {
          outcome = await handler.run(deps, current, signal);
        } catch (e) {
          if (!isDomainError(e) || e.kind === 'unavailable' || e.kind === 'internal') throw e;
          deps.log.warn({ publishJobId: current.id, step: step.name, reason: e.detail }, 'publish step failed');
          await store.failStep({ jobId: current.id, step: step.name, reason: e.detail, now: clock.now() });
          return;
        }
        if (handler.completesJob) {
          deps.log.info({ publishJobId: current.id, image: current.imageName, version: current.version }, 'version published');
        } else {
          await store.finishStep({ jobId: current.id, step: step.name, outcome, now: clock.now() });
        }
      }
    },

    async giveUp(job, error) {
      const current = await store.getPublishJob(publishJobId(job.payload));
      const step = current?.steps.find((s) => s.state === 'running') ?? current?.steps.find((s) => s.state !== 'succeeded' && s.state !== 'skipped');
      if (!current || !step) return;
      await store.failStep({ jobId: current.id, step: step.name, reason: `gave up after repeated infrastructure errors: ${error}`, now: clock.now() });
    },
  };
}
