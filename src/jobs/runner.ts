import type { Logger } from 'pino';
import type { Job, JobKind } from '../domain/job.ts';
import type { Clock } from '../lib/clock.ts';
import type { JobQueue } from '../store/metadata-store.ts';
import { currentOwner, type Owner } from './owner.ts';

/** The handler of one kind of durable work. `run` must be safe to re-run from the start after a lost lease. */
export interface JobHandler<P> {
  kind: JobKind<P>;
  /** Claims allowed before the job fails for good; a handler's own verdicts are not errors. */
  maxAttempts: number;
  run(payload: P, context: { job: Job; signal: AbortSignal }): Promise<void>;
  /** Called once when the job fails for good, to record the failure where users see it. */
  giveUp(payload: P, error: string, job: Job): Promise<void>;
}

/** A handler and how many of its jobs this process runs at once. */
export interface JobWorker {
  // The payload type differs per kind; the runner only passes each handler what its own kind decoded.
  handler: JobHandler<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  concurrency: number;
}

export interface JobRunnerOptions {
  store: Pick<JobQueue, 'claimJob' | 'renewJobLease' | 'finishJob' | 'listLeaseOwners' | 'releaseLeases'>;
  /** The kinds this process runs, each with its own concurrency: a long build never starves blob verification. */
  workers: readonly JobWorker[];
  leaseMs: number;
  pollMs: number;
  clock: Clock;
  log: Logger;
  /** Lease owner identity; tests pass their own. */
  owner?: Owner;
  /** How long `stop` waits for running handlers to end (default 10 s). */
  stopGraceMs?: number;
}

export type JobRunner = ReturnType<typeof createJobRunner>;

/** Why a handler was stopped: another worker holds (or may hold) the job now. */
class LeaseLost extends Error {
  override name = 'LeaseLost';
}

/**
 * Claims jobs of its kinds from the store and runs them, each kind at most at its concurrency.
 * A running job's lease is renewed every third of `leaseMs`. When renewal finds the lease taken,
 * or has failed for longer than the lease, the handler is aborted and the job left to whoever
 * holds it now. A job that throws is retried with backoff until `maxAttempts`; one whose payload
 * its kind cannot read fails at once.
 */
export function createJobRunner(opts: JobRunnerOptions) {
  const { store, clock, log } = opts;
  const self = opts.owner ?? currentOwner();
  const owner = self.id;
  const workers = new Map(opts.workers.map((w) => [w.handler.kind.kind, w]));
  const active = new Map<string, { kind: string; done: Promise<void>; abort: AbortController; heartbeat?: NodeJS.Timeout }>();
  let running = false;
  let loopDone: Promise<void> = Promise.resolve();
  let wake: (() => void) | undefined;

  const poke = () => wake?.();
  const busy = (kind: string) => [...active.values()].filter((a) => a.kind === kind).length;

  async function execute(job: Job, handler: JobHandler<unknown>, abort: AbortController): Promise<void> {
    const jobLog = log.child({ jobId: job.id, kind: job.kind, attempt: job.attempts });
    let payload: unknown;
    try {
      payload = handler.kind.decode(job.payload);
    } catch (err) {
      jobLog.error({ err }, 'job payload unreadable; failed for good');
      await store.finishJob({ id: job.id, owner, now: clock.now(), outcome: 'failed', error: (err as Error).message });
      return;
    }
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
    const entry = active.get(job.id);
    if (entry) entry.heartbeat = heartbeat;
    try {
      jobLog.debug('job started');
      await handler.run(payload, { job, signal: abort.signal });
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
        await handler.giveUp(payload, error, job);
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
      for (;;) {
        const kinds = [...workers.values()].filter((w) => busy(w.handler.kind.kind) < w.concurrency).map((w) => w.handler.kind.kind);
        if (!running || kinds.length === 0) break;
        const job = await store.claimJob({ kinds, owner, leaseMs: opts.leaseMs, now: clock.now() }).catch((err: unknown) => {
          log.warn({ err }, 'job claim failed');
          return undefined;
        });
        if (!job) break;
        const abort = new AbortController();
        const entry: { kind: string; done: Promise<void>; abort: AbortController; heartbeat?: NodeJS.Timeout } = { kind: job.kind, done: Promise.resolve(), abort };
        active.set(job.id, entry);
        entry.done = execute(job, workers.get(job.kind)!.handler, abort)
          .catch((err: unknown) => log.error({ err, jobId: job.id }, 'job bookkeeping failed; its lease will lapse'))
          .finally(() => {
            active.delete(job.id);
            poke();
          });
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

  async function reclaimDeadLeases(): Promise<void> {
    for (const other of await store.listLeaseOwners()) {
      if (!self.isDead(other)) continue;
      const released = await store.releaseLeases({ owner: other, now: clock.now() });
      log.info({ deadOwner: other, released }, 'reclaimed jobs of a dead process');
    }
  }

  return {
    owner,
    /** The kinds this runner claims. */
    kinds: [...workers.keys()],
    /** Releases leases held by dead processes of this host, then starts claiming. */
    async start(): Promise<void> {
      await reclaimDeadLeases();
      running = true;
      loopDone = loop();
    },
    /** Wakes the loop at once (a job was just enqueued). */
    notify: poke,
    /**
     * Stops claiming, aborts running handlers and puts their jobs back in the queue. A handler
     * that does not stop within `stopGraceMs` is left behind: its lease lapses and another
     * worker (or this one after a restart) runs the job again.
     */
    async stop(): Promise<void> {
      running = false;
      poke();
      for (const { abort } of active.values()) abort.abort(new Error('shutdown'));
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, opts.stopGraceMs ?? 10_000)));
      await Promise.race([Promise.all([loopDone, ...[...active.values()].map((a) => a.done)]), grace]);
      clearTimeout(timer);
      // Handlers left behind no longer hold their leases: those lapse, and the job runs again elsewhere.
      for (const { heartbeat } of active.values()) clearInterval(heartbeat);
    },
  };
}
