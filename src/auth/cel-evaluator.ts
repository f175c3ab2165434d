import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { OidcIdentity } from '../domain/oidc.ts';

export interface ConditionJob {
  condition: string;
  forwardedClaims: readonly string[];
  claims: Record<string, unknown>;
  identity: OidcIdentity;
}

/** `over_budget`: stopped after the time budget; `error`: evaluation failed (e.g. a claim is absent). */
export type ConditionReply = { outcome: 'true' | 'false' | 'over_budget' } | { outcome: 'error'; message: string };

export interface CelEvaluator {
  evaluate(job: ConditionJob): Promise<ConditionReply>;
  /** Terminates the worker. Idempotent; later calls to `evaluate` start a new one. */
  close(): Promise<void>;
}

// Bundled as dist/cel-worker.mjs next to dist/main.mjs; run from source under tsx.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './cel-worker.ts' : './cel-worker.mjs', import.meta.url);
/** Worker threads do not inherit tsx's loader hooks: from source, register them first. */
const newWorker = (options: WorkerOptions) =>
  FROM_SOURCE
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL.href)}); });`, { ...options, eval: true })
    : new Worker(WORKER_URL, options);

/**
 * Evaluates CEL conditions one at a time in a worker thread, each within `budgetMs` of CPU
 * and wall time: CEL cannot loop forever, but nested comprehensions over large claims can run
 * for minutes, and cel-js has no cost counter, so a condition over budget is stopped by
 * terminating the worker (a fresh one serves the next job). The worker's heap is capped, so
 * a condition that builds huge strings fails instead of exhausting the server's memory.
 */
export function createCelEvaluator(opts: { budgetMs: number; maxHeapMb?: number }): CelEvaluator {
  let worker: Promise<Worker> | undefined;
  let tail: Promise<unknown> = Promise.resolve();

  const start = () =>
    new Promise<Worker>((resolve, reject) => {
      const w = newWorker({ resourceLimits: { maxOldGenerationSizeMb: opts.maxHeapMb ?? 64 } });
      w.unref();
      w.once('message', () => resolve(w));
      w.once('error', reject);
    });

  const stop = async () => {
    const w = worker;
    worker = undefined;
    if (w) await (await w.catch(() => undefined))?.terminate();
  };

  async function run(job: ConditionJob): Promise<ConditionReply> {
    worker ??= start();
    let w: Worker;
    try {
      w = await worker;
    } catch (e) {
      worker = undefined;
      throw e;
    }
    return new Promise<ConditionReply>((resolve) => {
      const finish = (reply: ConditionReply, restart: boolean) => {
        clearTimeout(timer);
        w.off('message', onMessage).off('error', onError).off('exit', onExit);
        if (restart) void stop();
        resolve(reply);
      };
      const onMessage = (reply: ConditionReply) => finish(reply, false);
      const onError = (e: Error) => finish({ outcome: 'error', message: e.message }, true);
      const onExit = () => finish({ outcome: 'error', message: 'the evaluator stopped' }, true);
      const timer = setTimeout(() => finish({ outcome: 'over_budget' }, true), opts.budgetMs);
      w.on('message', onMessage).on('error', onError).on('exit', onExit);
      w.postMessage(job);
    });
  }

  return {
    evaluate(job) {
      const result = tail.then(() => run(job));
      tail = result.catch(() => undefined);
      return result;
    },
    close: stop,
  };
}
