/**
 * `npm run bench`, catalog and feed reads: requests per second on each metadata store against a
 * fastify hello-world route measured in the same run with the same load generator (`wrk`, on this
 * machine beside the server; what it costs is reported).
 *
 *   baseline = GET /hello on a bare fastify 5 process (no logging): what the HTTP stack alone
 *              serves on this machine
 *   sqlite   = imgsrv on the embedded store; postgres = imgsrv on PostgreSQL (own schema)
 *   reads    = anonymous GETs from BENCH_CONNECTIONS (default 32) keep-alive connections for
 *              BENCH_SECONDS (default 4) each, after a warm-up: alias resolution
 *              (/v1/images/bench/refs/stable), version manifests (/v1/images/bench/versions/N),
 *              the image and version lists, and the Incus feed (images.json and index.json,
 *              Accept-Encoding: gzip as the incus client sends it)
 *
 * Each of BENCH_ROUNDS rounds (default 3) measures everything once; each ratio is the median of
 * the per-round ratios to that round's baseline.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { publishedVersion } from '../helpers/catalog.ts';
import { apiClient } from '../helpers/client.ts';
import { createSchema } from '../helpers/postgres.ts';
import { removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { median, printTable, type Row } from './table.ts';
import { wrk } from './wrk.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const VERSIONS = 5;

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

/** An image with published versions 1..VERSIONS (qcow2 + incus.tar.xz, so the feed lists them) and `stable` on the newest. */
async function seed(server: ServerHandle): Promise<void> {
  const api = apiClient(server);
  for (let v = 1; v <= VERSIONS; v++) await publishedVersion(api, 'bench', `${v}.0`);
  const alias = await api.put('/v1/images/bench/aliases/stable', { json: { version: `${VERSIONS}.0` } });
  if (alias.status !== 200) throw new Error(`alias: ${alias.status}`);
}

const LOADS = [
  { label: 'alias resolution (refs/stable)', paths: ['/v1/images/bench/refs/stable'] },
  { label: 'version manifests', paths: Array.from({ length: VERSIONS }, (_, i) => `/v1/images/bench/versions/${i + 1}.0`) },
  { label: 'image and version lists', paths: ['/v1/images', '/v1/images/bench/versions'] },
  { label: 'Incus feed (images.json, index.json)', paths: ['/streams/v1/images.json', '/streams/v1/index.json'], headers: { 'accept-encoding': 'gzip' } },
] as const;

export async function catalogBench(): Promise<Row[]> {
  console.log(`catalog read bench: wrk, ${CONNECTIONS} connections, ${SECONDS} s per figure, ${ROUNDS} rounds`);
  const schema = await createSchema();
  const stores = [
    { name: 'SQLite', goal: 0.5, server: await startServer({ env: { IMGSRV_LOG_LEVEL: 'error' } }) },
    { name: 'PostgreSQL', goal: 0.3, server: await startServer({ env: { IMGSRV_LOG_LEVEL: 'error', IMGSRV_DATABASE_URL: schema.url } }) },
  ];
  const hello = await startHello();
  try {
    for (const s of stores) await seed(s.server);
    const run = (url: string, load: { paths: readonly string[]; headers?: Record<string, string> }, seconds = SECONDS) => wrk(url, { ...load, connections: CONNECTIONS, seconds });
    // Warm-up: JIT, caches, connection pools.
    await run(hello.url, { paths: ['/hello'] }, 1);
    for (const s of stores) for (const load of LOADS) await run(s.server.url, load, 1);
    const rounds: { hello: number; figures: Record<string, number>; wrkCores: number }[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const base = await run(hello.url, { paths: ['/hello'] });
      const figures: Record<string, number> = {};
      let wrkCores = base.cores;
      for (const s of stores) {
        for (const load of LOADS) {
          const got = await run(s.server.url, load);
          figures[`${s.name}: ${load.label}`] = got.requestsPerSecond;
          wrkCores = Math.max(wrkCores, got.cores);
        }
      }
      rounds.push({ hello: base.requestsPerSecond, figures, wrkCores });
      console.log(`round ${r + 1}: hello-world ${base.requestsPerSecond.toFixed(0)} req/s; ${Object.entries(figures).map(([k, v]) => `${k} ${v.toFixed(0)}`).join('; ')}`);
    }
    const baseline = 'fastify hello-world route';
    const rows: Row[] = [{ section: 'catalog and feed reads (wrk)', label: baseline, value: median(rounds.map((x) => x.hello)), unit: 'req/s' }];
    for (const s of stores) {
      for (const load of LOADS) {
        const key = `${s.name}: ${load.label}`;
        rows.push({
          section: 'catalog and feed reads (wrk)',
          label: key,
          value: median(rounds.map((x) => x.figures[key]!)),
          unit: 'req/s',
          baseline,
          ratio: median(rounds.map((x) => x.figures[key]! / x.hello)),
          goal: { atLeast: load.label.startsWith('Incus') ? 0.5 : s.goal },
        });
      }
    }
    rows.push({ section: 'catalog and feed reads (wrk)', label: 'load generator: wrk CPU (cores, of 2)', value: Math.max(...rounds.map((x) => x.wrkCores)), unit: 'cores', note: 'the most wrk used in any run' });
    return rows;
  } finally {
    await hello.stop();
    for (const { server } of stores) {
      await server.stop();
      await removeDir(server.dataDir);
    }
    await schema.drop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printTable(await catalogBench());
