import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { pino } from 'pino';
import { buildApp, type App } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { Clock } from '../../src/lib/clock.ts';
import { apiClient, type ApiClient } from './client.ts';
import { ensureBundle, makeDataDir, newToken, removeDir, TEST_STORE, testDatabaseUrl } from './server.ts';

/** A clock that runs with real time, plus whatever a test moved it ahead by. */
export interface ManualClock extends Clock {
  advance(ms: number): void;
}

export function manualClock(): ManualClock {
  let offset = 0;
  return { now: () => new Date(Date.now() + offset), advance: (ms) => void (offset += ms) };
}

export interface TestApp {
  app: App;
  url: string;
  token: string;
  dataDir: string;
  clock: ManualClock;
  api: ApiClient;
  /** What the server logged (warn and above, or from `logLevel` on). */
  logged: string[];
}

/**
 * The server built in this process (`buildApp`, as `main.ts` does), for tests that move time
 * instead of sleeping through it: token expiry, upload TTLs. Started before the suite's tests,
 * stopped and its data removed after them. Other API tests run the real process (`useServer`).
 */
export function useApp(opts: { env?: Record<string, string>; logLevel?: 'warn' | 'debug' } = {}): TestApp {
  const ctx = {} as TestApp;
  before(async () => {
    await ensureBundle();
    const dataDir = await makeDataDir();
    const token = newToken();
    const env: Record<string, string> = { IMGSRV_PORT: '0', IMGSRV_DATA_DIR: dataDir, IMGSRV_BOOTSTRAP_TOKEN: token, IMGSRV_LOG_LEVEL: 'warn', ...opts.env };
    if (TEST_STORE === 'postgres') env.IMGSRV_DATABASE_URL ??= await testDatabaseUrl(dataDir);
    const clock = manualClock();
    const logged: string[] = [];
    const app = await buildApp(loadConfig(env), pino({ level: opts.logLevel ?? 'warn' }, { write: (line: string) => void logged.push(line) }), { clock });
    ctx.logged = logged;
    const { url } = await app.serve();
    Object.assign(ctx, { app, url, token, dataDir, clock, api: apiClient({ url, token }) });
  });
  after(async () => {
    if (!ctx.app) return;
    await ctx.app.stop();
    await removeDir(ctx.dataDir);
    assert.deepEqual(ctx.logged.filter((line) => /"level":(50|60)/.test(line)), [], 'the server logged errors');
  });
  return ctx;
}
