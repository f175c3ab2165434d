import type { Logger } from 'pino';
import { isDomainError } from '../domain/errors.ts';
import { PUBLISH_JOB } from '../domain/job.ts';
import type { Clock } from '../lib/clock.ts';
import type { PublishDriver } from '../store/catalog-repository.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { JobHandler } from './runner.ts';
import { PUBLISH_STEP_HANDLERS } from './steps/index.ts';
import type { StepDeps } from './steps/step.ts';

export interface PublishJobDeps extends StepDeps {
  store: StepDeps['store'] & Pick<MetadataStore, 'getPublishJob' | 'startStep' | 'finishStep' | 'failStep' | 'finalizePublish'>;
  clock: Clock;
  log: Logger;
  failpoint: (name: string) => Promise<void>;
}

/**
 * Drives a publish job through its blocking steps in order. A step that succeeded (or was
 * skipped) is never run again, also not after a crash or a retry; the step that was running
 * when a process died runs again (counted as another attempt). Every progress write is
 * conditional on this durable job still being the publish job's driver under our lease; when
 * one changes nothing, another worker drives the job and this one stops.
 *
 * A step's `DomainError` (a verdict on the content, or an operator-visible problem such as a
 * blob missing from storage) fails the job with its reason, for the operator to fix and retry.
 * Transient (`unavailable`) and unexpected errors are retried by the runner first; when it
 * gives up, the step fails with a fixed reason and the details go to the log.
 */
export function publishJob(deps: PublishJobDeps): JobHandler<{ publishJobId: string }> {
  const { store, clock, log } = deps;
  return {
    kind: PUBLISH_JOB,
    maxAttempts: 5,

    async run({ publishJobId }, { job, signal }) {
      const driver: PublishDriver = { jobId: job.id, owner: job.leaseOwner ?? '' };
      const current = await store.getPublishJob(publishJobId);
      if (!current || current.state === 'succeeded' || current.state === 'failed') return;
      const superseded = () => log.warn({ publishJobId: current.id, durableJobId: job.id }, 'publish job is driven elsewhere now; stopping');
      for (const step of current.steps) {
        if (step.state === 'succeeded' || step.state === 'skipped') continue;
        signal.throwIfAborted();
        if (!(await store.startStep({ jobId: current.id, step: step.name, driver, now: clock.now() }))) return superseded();
        await deps.failpoint(`publish-${step.name}`);
        let result;
        try {
          result = await PUBLISH_STEP_HANDLERS[step.name].run(deps, { job: current, driver, signal });
        } catch (e) {
          if (!isDomainError(e) || e.kind === 'unavailable' || e.kind === 'internal') throw e;
          log.warn({ publishJobId: current.id, step: step.name, reason: e.detail }, 'publish step failed');
          if (!(await store.failStep({ jobId: current.id, step: step.name, reason: e.detail, driver, now: clock.now() }))) superseded();
          return;
        }
        await deps.failpoint(`publish-${step.name}-done`);
        signal.throwIfAborted();
        const recorded = result.publishes
          ? await store.finalizePublish({ jobId: current.id, driver, now: clock.now() })
          : await store.finishStep({ jobId: current.id, step: step.name, outcome: result.outcome, driver, now: clock.now() });
        if (!recorded) return superseded();
        if (result.publishes) log.info({ publishJobId: current.id, image: current.imageName, version: current.version }, 'version published');
      }
    },

    async giveUp({ publishJobId }, error, job) {
      const current = await store.getPublishJob(publishJobId);
      const step = current?.steps.find((s) => s.state === 'running') ?? current?.steps.find((s) => s.state !== 'succeeded' && s.state !== 'skipped');
      if (!current || !step) return;
      log.error({ publishJobId: current.id, step: step.name, error }, 'publish step gave up after repeated errors');
      const reason = `the step failed repeatedly on an internal error; the server log has the details (publish job ${current.id})`;
      await store.failStep({ jobId: current.id, step: step.name, reason, driver: { jobId: job.id, owner: job.leaseOwner ?? '' }, now: clock.now() });
    },
  };
}
