import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminQuery, createSchema, schemaUrl } from './postgres.ts';
import { newBucket } from './s3.ts';
import { BUCKET_FILE } from './storage.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Rebuilds dist/main.mjs when any source file is newer, so tests always run what `npm start` runs. */
let bundleChecked = false;
export async function ensureBundle(): Promise<string> {
  const { build, BUNDLE } = (await import('../../scripts/build.mjs')) as { build: () => void; BUNDLE: string };
  if (bundleChecked) return BUNDLE;
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  let built = 0;
  try {
    built = statSync(BUNDLE).mtimeMs;
  } catch {
    // not built yet
  }
  if (built < Math.max(newest(join(REPO_ROOT, 'src')), newest(join(REPO_ROOT, 'openapi')))) build();
  bundleChecked = true;
  return BUNDLE;
}

/**
 * Which metadata store the server tests run against: `IMGSRV_TEST_STORE=postgres` gives every
 * data dir its own PostgreSQL schema (`npm run test:pg`); unset, the embedded SQLite file.
 */
export const TEST_STORE = ((v = process.env.IMGSRV_TEST_STORE ?? 'sqlite') => {
  if (v !== 'sqlite' && v !== 'postgres') throw new Error(`IMGSRV_TEST_STORE must be sqlite or postgres, not ${v}`);
  return v;
})();

const SCHEMA_FILE = '.test-pg-schema';

/**
 * Where the server tests keep blobs: `IMGSRV_TEST_BLOBS=s3` gives every data dir its own bucket
 * on a real Ceph RGW that this test process starts on first use (`npm run test:s3`); unset, the
 * data dir.
 */
export const TEST_BLOBS = ((v = process.env.IMGSRV_TEST_BLOBS ?? 'fs') => {
  if (v !== 'fs' && v !== 's3') throw new Error(`IMGSRV_TEST_BLOBS must be fs or s3, not ${v}`);
  return v;
})();

/** The S3 settings of a data dir's own bucket, created on first use (TEST_BLOBS s3), so a restarted server finds its blobs. */
async function testBucketEnv(dataDir: string): Promise<Record<string, string>> {
  const file = join(dataDir, BUCKET_FILE);
  const known = await readFile(file, 'utf8').catch(() => undefined);
  if (known) return JSON.parse(known) as Record<string, string>;
  const { env } = await newBucket();
  await writeFile(file, JSON.stringify(env));
  return env;
}

/** The PostgreSQL URL of a data dir's own schema, created on first use (TEST_STORE postgres). */
export async function testDatabaseUrl(dataDir: string): Promise<string> {
  const file = join(dataDir, SCHEMA_FILE);
  const known = await readFile(file, 'utf8').catch(() => undefined);
  if (known) return schemaUrl(known);
  const schema = await createSchema();
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, schema.name);
  return schema.url;
}

export const newToken = () => `imgsrv_${randomBytes(16).toString('hex')}_${randomBytes(32).toString('base64url')}`;

export interface ServerOptions {
  /** Extra IMGSRV_* settings (the helper sets port, data dir, token and log level). */
  env?: Record<string, string>;
  dataDir?: string;
  token?: string;
}

/** A real imgsrv process on a random port, with its own data directory. */
export interface ServerHandle {
  url: string;
  token: string;
  dataDir: string;
  process: ChildProcess;
  /** Everything the process printed to stdout so far. */
  output(): string;
  /** Resolves when a stdout line matches, rejects if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGKILL, no cleanup: what a crash looks like. */
  kill(): Promise<void>;
  /** SIGTERM and wait for a graceful exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/** This process's environment without any IMGSRV_* setting: a server started with it sees only what a test passes. */
export const environmentWithoutSettings = (): Record<string, string> =>
  Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !e[0].startsWith('IMGSRV_') && e[1] !== undefined));

/** Lines a server logged at error or fatal level: a 500, a crash, a job that failed for good. */
export const loggedErrors = (server: Pick<ServerHandle, 'output'>): string[] => server.output().split('\n').filter((line) => /"level":(50|60)/.test(line));

export async function makeDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'imgsrv-test-'));
}

export async function startServer(opts: ServerOptions = {}): Promise<ServerHandle> {
  const dataDir = opts.dataDir ?? (await makeDataDir());
  const token = opts.token ?? newToken();
  const env = environmentWithoutSettings();
  // As `npm start` runs it (see README: fewer glibc malloc arenas, flatter RSS).
  Object.assign(env, { MALLOC_ARENA_MAX: '2', IMGSRV_PORT: '0', IMGSRV_DATA_DIR: dataDir, IMGSRV_BOOTSTRAP_TOKEN: token, IMGSRV_LOG_LEVEL: 'warn' }, opts.env);
  if (TEST_STORE === 'postgres' && env.IMGSRV_DATABASE_URL === undefined) env.IMGSRV_DATABASE_URL = await testDatabaseUrl(dataDir);
  if (TEST_BLOBS === 's3' && env.IMGSRV_BLOB_STORE === undefined) Object.assign(env, await testBucketEnv(dataDir));

  const child = spawn(process.execPath, ['--max-semi-space-size=4', '--enable-source-maps', await ensureBundle()], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    waiters.forEach((w) => w());
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));

  const waitForOutput = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = stdout.match(pattern);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no output matching ${pattern} within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      void exited.then((code) => {
        if (!waiters.has(check)) return;
        done();
        reject(new Error(`server exited (${code}) before printing ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      });
      waiters.add(check);
      check();
    });

  const [, url] = (await waitForOutput(/imgsrv listening on (\S+)/)) as RegExpMatchArray & [string, string];
  return {
    url,
    token,
    dataDir,
    process: child,
    output: () => stdout,
    waitForOutput,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      // A server parked at a failpoint (or otherwise stuck) must not hold the test run forever.
      const force = setTimeout(() => child.kill('SIGKILL'), 20_000);
      try {
        return await exited;
      } finally {
        clearTimeout(force);
      }
    },
  };
}

/** Removes a directory, and the PostgreSQL schema of every data dir in it. */
export async function removeDir(dir: string): Promise<void> {
  const entries = await readdir(dir, { recursive: true }).catch(() => []);
  for (const entry of entries.filter((e) => basename(e) === SCHEMA_FILE)) {
    const schema = await readFile(join(dir, entry), 'utf8');
    await adminQuery(`drop schema if exists "${schema}" cascade`);
  }
  await rm(dir, { recursive: true, force: true });
}
