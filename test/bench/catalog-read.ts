/**
 * `npm run bench` (second part): catalog reads per second on each metadata store, against a
 * fastify hello-world route measured in the same run with the same load generator.
 *
 *   baseline = GET /hello on a bare fastify 5 process (no logging): what the HTTP stack alone
 *              serves on this machine
 *   sqlite   = imgsrv on the embedded store; postgres = imgsrv on PostgreSQL (own schema)
 *   load     = anonymous GETs alternating between an alias resolution
 *              (/v1/images/bench/refs/stable) and a version manifest (/v1/images/bench/versions/N),
 *              from BENCH_CONNECTIONS (default 32) keep-alive connections for BENCH_SECONDS
 *              (default 5) after a 1 s warm-up, each response checked for status 200
 *
 * Each of BENCH_ROUNDS rounds (default 3) measures all three; medians are reported, and each
 * store's ratio is the median of its per-round ratio to that round's baseline.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { random } from '../helpers/bytes.ts';
import { publishedVersion } from '../helpers/catalog.ts';
import { apiClient } from '../helpers/client.ts';
import { createSchema } from '../helpers/postgres.ts';
import { removeDir, startServer, type ServerHandle } from '../helpers/server.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const VERSIONS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Requests per second that `connections` concurrent keep-alive clients get through `paths` in turn. */
async function load(origin: string, paths: readonly string[], seconds: number): Promise<number> {
  const pool = new Pool(origin, { connections: CONNECTIONS, pipelining: 1 });
  let done = 0;
  let counting = false;
  let stopAt = Infinity;
  const worker = async (offset: number) => {
    for (let i = offset; performance.now() < stopAt; i++) {
      const res = await pool.request({ method: 'GET', path: paths[i % paths.length]! });
      await res.body.arrayBuffer();
      if (res.statusCode !== 200) throw new Error(`GET ${paths[i % paths.length]} answered ${res.statusCode}`);
      if (counting) done++;
    }
  };
  const start = performance.now();
  stopAt = start + (1 + seconds) * 1000;
  const workers = Array.from({ length: CONNECTIONS }, (_, i) => worker(i));
  await new Promise((r) => setTimeout(r, 1000));
  counting = true;
  const t0 = performance.now();
  await Promise.all(workers);
  const elapsed = (performance.now() - t0) / 1000;
  await pool.close();
  return done / elapsed;
}

/** A bare fastify process with one JSON route: the baseline. */
async function startHello(): Promise<{ url: string; stop(): Promise<void> }> {
  const code = `
    import Fastify from 'fastify';
    const app = Fastify({ logger: false });
    app.get('/hello', async () => ({ hello: 'world' }));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    process.stdout.write(url + '\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return {
    url: line.toString().trim(),
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** An image with published versions 1..VERSIONS and `stable` on the newest. */
async function seed(server: ServerHandle): Promise<void> {
  const api = apiClient(server);
  for (let v = 1; v <= VERSIONS; v++) await publishedVersion(api, 'bench', `${v}.0`, { format: 'raw', disk: random(64 * 1024), metadata: false });
  const alias = await api.put('/v1/images/bench/aliases/stable', { json: { version: `${VERSIONS}.0` } });
  if (alias.status !== 200) throw new Error(`alias: ${alias.status}`);
}

const PATHS = Array.from({ length: VERSIONS }, (_, i) => [`/v1/images/bench/refs/stable`, `/v1/images/bench/versions/${i + 1}.0`]).flat();

async function main() {
  console.log(`imgsrv catalog read bench: ${CONNECTIONS} connections, ${SECONDS} s per measurement, ${ROUNDS} rounds`);
  const schema = await createSchema();
  const sqlite = await startServer({ env: { IMGSRV_LOG_LEVEL: 'error' } });
  const postgres = await startServer({ env: { IMGSRV_LOG_LEVEL: 'error', IMGSRV_DATABASE_URL: schema.url } });
  const hello = await startHello();
  try {
    await seed(sqlite);
    await seed(postgres);
    const rounds: { hello: number; sqlite: number; postgres: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round = {
        hello: await load(hello.url, ['/hello'], SECONDS),
        sqlite: await load(sqlite.url, PATHS, SECONDS),
        postgres: await load(postgres.url, PATHS, SECONDS),
      };
      rounds.push(round);
      console.log(`round ${r + 1}: hello-world ${round.hello.toFixed(0)} req/s, sqlite ${round.sqlite.toFixed(0)} req/s, postgres ${round.postgres.toFixed(0)} req/s`);
    }
    const m = (f: (x: (typeof rounds)[number]) => number) => median(rounds.map(f));
    console.log('');
    console.log(`medians of ${ROUNDS} rounds:`);
    const row = (label: string, rps: number, ratio: number) => console.log(`${label.padEnd(44)} ${rps.toFixed(0).padStart(7)} req/s ${ratio.toFixed(2).padStart(6)}`);
    row('baseline: fastify hello-world route', m((x) => x.hello), 1);
    row('catalog reads, SQLite store', m((x) => x.sqlite), m((x) => x.sqlite / x.hello));
    row('catalog reads, PostgreSQL store', m((x) => x.postgres), m((x) => x.postgres / x.hello));
  } finally {
    await hello.stop();
    for (const s of [sqlite, postgres]) {
      await s.stop();
      await removeDir(s.dataDir);
    }
    await schema.drop();
  }
}

await main();
