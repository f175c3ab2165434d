import type { Logger } from 'pino';
import type { Job } from '../domain/job.ts';
import type { Clock } from '../lib/clock.ts';
import type { JobQueue } from '../store/metadata-store.ts';
import { currentOwner, type Owner } from './owner.ts';

/** One kind of durable work. `run` must be safe to re-run from the start after a lost lease. */
export interface JobHandler {
  kind: string;
  /** Claims allowed before the job fails for good; a handler's own verdicts are not errors. */
  maxAttempts: number;
  run(job: Job, signal: AbortSignal): Promise<void>;
  /** Called once when the job fails for good, to record the failure where users see it. */
  giveUp(job: Job, error: string): Promise<void>;
}

export interface JobRunnerOptions {
  store: Pick<JobQueue, 'claimJob' | 'renewJobLease' | 'finishJob' | 'listLeaseOwners' | 'releaseLeases'>;
  handlers: readonly JobHandler[];
  leaseMs: number;
  pollMs: number;
  concurrency: number;
  clock: Clock;
  log: Logger;
  /** Lease owner identity; tests pass their own. */
  owner?: Owner;
}

export type JobRunner = ReturnType<typeof createJobRunner>;

/** Why a handler was stopped: another worker holds (or may hold) the job now. */
class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/**
 * Claims jobs from the store and runs them, at most `concurrency` at a time. A running job's
 * lease is renewed every third of `leaseMs`. When renewal finds the lease taken, or has failed
 * for longer than the lease, the handler is aborted and the job left to whoever holds it now.
 * A job that throws is retried with backoff until `maxAttempts`.
 */
export function createJobRunner(opts: JobRunnerOptions) {
  const { store, clock, log } = opts;
  const self = opts.owner ?? currentOwner();
  const owner = self.id;
  const handlers = new Map(opts.handlers.map((h) => [h.kind, h]));
  const kinds = [...handlers.keys()];
  const active = new Map<string, { done: Promise<void>; abort: AbortController }>();
  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  let wake: (() => void) | undefined;

  const poke = () => wake?.();

  async function execute(job: Job, handler: JobHandler, abort: AbortController): Promise<void> {
    const jobLog = log.child({ jobId: job.id, kind: job.kind, attempt: job.attempts });
    let renewedAt = clock.now().getTime();
    const heartbeat = setInterval(() => {
      store
        .renewJobLease({ id: job.id, owner, leaseMs: opts.leaseMs, now: clock.now() })
        .then((held) => {
          if (held) renewedAt = clock.now().getTime();
          else abort.abort(new LeaseLost('the lease was taken by another worker'));
        })
        .catch((err: unknown) => {
          jobLog.warn({ err }, 'job lease not renewed');
          if (clock.now().getTime() - renewedAt >= opts.leaseMs) abort.abort(new LeaseLost('the lease could not be renewed in time'));
        });
    }, Math.max(50, opts.leaseMs / 3));
    try {
      jobLog.debug('job started');
      await handler.run(job, abort.signal);
      await store.finishJob({ id: job.id, owner, now: clock.now(), outcome: 'succeeded' });
      jobLog.debug('job succeeded');
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (abort.signal.reason instanceof LeaseLost) {
        // Someone else may be running the job now: neither retry nor give up on its behalf.
        jobLog.warn({ reason: abort.signal.reason.message }, 'job abandoned: lease lost');
      } else if (!running && abort.signal.aborted) {
        await store.finishJob({ id: job.id, owner, now: clock.now(), outcome: 'retry', error: 'interrupted by shutdown', retryAt: clock.now() });
        jobLog.info('job released at shutdown');
      } else if (job.attempts >= handler.maxAttempts) {
        jobLog.error({ err }, 'job failed for good');
        await handler.giveUp(job, error);
        await store.finishJob({ id: job.id, owner, now: clock.now(), outcome: 'failed', error });
      } else {
        const retryAt = new Date(clock.now().getTime() + Math.min(60_000, 500 * 2 ** job.attempts));
        jobLog.warn({ err, retryAt }, 'job failed; retrying');
        await store.finishJob({ id: job.id, owner, now: clock.now(), outcome: 'retry', error, retryAt });
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function loop(): Promise<void> {
    while (running) {
      while (running && active.size < opts.concurrency) {
        const job = await store.claimJob({ kinds, owner, leaseMs: opts.leaseMs, now: clock.now() }).catch((err: unknown) => {
          log.warn({ err }, 'job claim failed');
          return undefined;
        });
        if (!job) break;
        const abort = new AbortController();
        const done = execute(job, handlers.get(job.kind)!, abort)
          .catch((err: unknown) => log.error({ err, jobId: job.id }, 'job bookkeeping failed; its lease will lapse'))
          .finally(() => {
            active.delete(job.id);
            poke();
          });
        active.set(job.id, { done, abort });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, opts.pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  }

  return {
    owner,
    /** Releases leases held by dead processes of this host, then starts claiming. */
    async start(): Promise<void> {
      await reclaimDeadLeases();
      running = true;
      loopDone = loop();
    },
    /** Wakes the loop at once (a job was just enqueued). */
    notify: poke,
    /** Stops claiming, aborts running handlers and puts their jobs back in the queue. */
    async stop(): Promise<void> {
      running = false;
      poke();
      for (const { abort } of active.values()) abort.abort(new Error('shutdown'));
      await Promise.all([loopDone, ...[...active.values()].map((a) => a.done)]);
    },
  };

  async function reclaimDeadLeases(): Promise<void> {
    for (const other of await store.listLeaseOwners()) {
      if (!self.isDead(other)) continue;
      const released = await store.releaseLeases({ owner: other, now: clock.now() });
      log.info({ deadOwner: other, released }, 'reclaimed jobs of a dead process');
    }
  }
}
