import type { Logger } from 'pino';

/**
 * Named crash-test points. In production none is armed and a failpoint is a no-op. A test
 * arms some with IMGSRV_FAILPOINTS; reaching one prints `failpoint reached: NAME` and parks
 * that piece of work forever, so the test can SIGKILL the process at exactly that moment.
 */
export function createFailpoints(armed: readonly string[], log: Logger): (name: string) => Promise<void> {
  const set = new Set(armed);
  return async (name) => {
    if (!set.has(name)) return;
    log.warn({ failpoint: name }, 'failpoint reached; parking');
    process.stdout.write(`failpoint reached: ${name}\n`);
    await new Promise<never>(() => {});
  };
}
