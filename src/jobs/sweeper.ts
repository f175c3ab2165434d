import type { Logger } from 'pino';

/**
 * Runs `sweep` every `intervalMs` (expiry of abandoned uploads, removal of parts of finished
 * sessions). Every instance may sweep: each step is a conditional update or an idempotent
 * removal, so concurrent sweeps agree. A sweep never overlaps the previous one.
 */
export function createSweeper(opts: { sweep: () => Promise<unknown>; intervalMs: number; log: Logger }) {
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  const tick = () => {
    current = opts
      .sweep()
      .catch((err: unknown) => opts.log.warn({ err }, 'sweep failed; retrying at the next interval'))
      .finally(() => {
        if (timer) timer = setTimeout(tick, opts.intervalMs);
      });
  };
  return {
    start() {
      timer = setTimeout(tick, opts.intervalMs);
    },
    async stop() {
      clearTimeout(timer);
      timer = undefined;
      await current;
    },
  };
}
