import type { Logger } from 'pino';

/**
 * Named crash-test points. In production none is armed and a failpoint is a no-op. A test
 * arms some with IMGSRV_FAILPOINTS; reaching one prints `failpoint reached: NAME` and parks
 * that piece of work forever, so the test can SIGKILL the process at exactly that moment.
 * `NAME@MS` delays the work by MS milliseconds instead, so a test can change the world under it.
 */
export function createFailpoints(armed: readonly string[], log: Logger): (name: string) => Promise<void> {
  const points = new Map(armed.map((spec) => {
    const [name, ms] = spec.split('@');
    return [name!, ms === undefined ? undefined : Number(ms)] as const;
  }));
  return async (name) => {
    if (!points.has(name)) return;
    const ms = points.get(name);
    log.warn({ failpoint: name, ms }, ms === undefined ? 'failpoint reached; parking' : 'failpoint reached; delaying');
    process.stdout.write(`failpoint reached: ${name}\n`);
    await new Promise<void>((resolve) => ms !== undefined && setTimeout(resolve, ms));
  };
}
