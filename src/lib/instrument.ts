import type { Logger } from 'pino';
import { isDomainError } from '../domain/errors.ts';
import { decorate } from './decorate.ts';

/** A client going away mid-transfer is not a storage fault. */
const CLIENT_GONE = new Set(['ABORT_ERR', 'ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET']);

/**
 * Times and logs every call of an interface implementation (debug), and logs failures that
 * are neither domain verdicts nor client disconnects (warn). Applied in app.ts around
 * whichever backend was chosen.
 */
export function instrument<T extends object>(target: T, component: string, log: Logger): T {
  return decorate(target, async (method, call) => {
    const started = performance.now();
    try {
      return await call();
    } catch (err) {
      const gone = CLIENT_GONE.has((err as { code?: string }).code ?? '') || (err as Error).name === 'AbortError';
      if (!gone && (!isDomainError(err) || err.kind === 'unavailable')) log.warn({ component, method, err }, 'storage call failed');
      throw err;
    } finally {
      log.debug({ component, method, ms: Math.round((performance.now() - started) * 10) / 10 }, 'storage call');
    }
  });
}
