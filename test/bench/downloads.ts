/**
 * `npm run bench`, downloads and memory: imgsrv's blob downloads against Debian's
 * `docker-registry` (distribution 2.8) serving the same bytes from the same disk, in one run.
 *
 *   whole blob   = GET of a BENCH_MB (default 512) MiB blob with curl to /dev/null, imgsrv and
 *                  distribution in turn, BENCH_SAMPLES (default 5) times each; once on an idle
 *                  machine and once with a CPU hog (a busy shell loop) beside it
 *   ranges       = 1 MiB Range reads at random offsets from 16 keep-alive clients (wrk, 5 s)
 *   syscalls     = what the server process makes per MiB of one whole-blob GET (strace -c -f)
 *   500 at once  = 500 connections each downloading a 16 MiB blob again and again (wrk, 20 s),
 *                  while /healthz is asked every 50 ms: every download completes, the probe's
 *                  p99, and the server's resident memory before and at its peak
 *   4 GiB        = peak RSS over an upload (one part, contract path) and a download of 4 GiB
 *   20 rounds    = RSS after each of 20 rounds of uploading and downloading a 64 MiB blob on one
 *                  server: the peak of the last 10 rounds against the peak of the first 10
 */
import { execFile as execFileCb, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeDataDir, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { startDistribution } from './distribution.ts';
import { median, printTable, type Row } from './table.ts';
import { measureUpload, pushMonolithic, statusMb } from './upload-download.ts';
import { wrk } from './wrk.ts';

const execFile = promisify(execFileCb);
const MB = 1024 * 1024;
const SIZE_MB = Number(process.env.BENCH_MB ?? 512);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 5);
const SECTION = 'blob downloads and memory';

const randomFile = (path: string, mb: number) => execFileSync('sh', ['-c', `head -c ${mb * MB} /dev/urandom > ${path}`]);
const sha256 = (path: string) => execFileSync('openssl', ['dgst', '-sha256', '-r', path], { encoding: 'utf8' }).split(' ')[0]!;
/** Pushes `file` to a registry's /v2 and returns its blob path there. */
async function push(url: string, file: string, digest: string, auth?: string): Promise<string> {
  await pushMonolithic({ url, repository: 'bench/blobs', file, digest, auth });
  return `/v2/bench/blobs/blobs/sha256:${digest}`;
}

/** MB/s of one whole GET with curl. */
async function get(origin: string, path: string, bytes: number): Promise<number> {
  const t = performance.now();
  await execFile('curl', ['-sS', '--fail', '-o', '/dev/null', `${origin}${path}`]);
  return bytes / MB / ((performance.now() - t) / 1000);
}

/** A busy loop on one core, for as long as it runs. */
async function withCpuHog<T>(fn: () => Promise<T>): Promise<T> {
  const hog = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
  try {
    return await fn();
  } finally {
    hog.kill('SIGKILL');
    await once(hog, 'exit');
  }
}

/** Random 1 MiB ranges of a `size`-byte blob. */
const rangeScript = (path: string, size: number) =>
  `local first = math.random(0, ${size - MB}) \n  return wrk.format("GET", ${JSON.stringify(path)}, { Range = "bytes=" .. first .. "-" .. (first + ${MB - 1}) })`;

/** Syscalls the server makes per MiB of one whole-blob GET, by name (strace -c -f). */
async function syscallsPerMiB(server: ServerHandle, path: string, bytes: number): Promise<{ total: number; top: string }> {
  const out = join(server.dataDir, 'strace.txt');
  const tracer = spawn('strace', ['-c', '-f', '-o', out, '-p', String(server.process.pid!)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  await get(server.url, path, bytes);
  tracer.kill('SIGINT');
  await once(tracer, 'exit');
  const lines = (await readFile(out, 'utf8')).split('\n').filter((l) => /^\s*[\d.]+\s+[\d.]+\s+\d+\s+\d+/.test(l));
  const calls = lines
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return { name: f.at(-1)!, calls: Number(f[3]) };
    })
    .filter((c) => c.name !== 'total');
  const perMiB = (n: number) => n / (bytes / MB);
  return {
    total: perMiB(calls.reduce((a, c) => a + c.calls, 0)),
    top: calls
      .sort((a, b) => b.calls - a.calls)
      .slice(0, 5)
      .map((c) => `${c.name} ${perMiB(c.calls).toFixed(1)}`)
      .join(', '),
  };
}

/** Latencies of GET /healthz every 50 ms until `stop` resolves. */
async function probeHealth(origin: string, stop: Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  let done = false;
  void stop.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    const res = await fetch(`${origin}/healthz`);
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status} under load`);
    latencies.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 50));
  }
  return latencies;
}

export async function downloadBench(): Promise<Row[]> {
  const work = await makeDataDir();
  const rows: Row[] = [];
  console.log(`download bench: ${SIZE_MB} MiB blob, ${SAMPLES} samples per figure, on ${work}`);
  try {
    const file = join(work, 'blob.bin');
    randomFile(file, SIZE_MB);
    const digest = sha256(file);
    const bytes = SIZE_MB * MB;
    const server = await startServer({ dataDir: join(work, 'imgsrv'), env: { IMGSRV_LOG_LEVEL: 'error' } });
    const peer = await startDistribution(join(work, 'distribution'));
    try {
      const auth = `Basic ${Buffer.from(`bench:${server.token}`).toString('base64')}`;
      await push(server.url, file, digest, auth);
      const theirs = await push(peer.url, file, digest);
      const blob = `/v1/blobs/sha256:${digest}`;
      await get(server.url, blob, bytes);
      await get(peer.url, theirs, bytes);

      for (const hog of [false, true]) {
        const measure = async () => {
          const r = { imgsrv: [] as number[], distribution: [] as number[] };
          for (let i = 0; i < SAMPLES; i++) {
            r.imgsrv.push(await get(server.url, blob, bytes));
            r.distribution.push(await get(peer.url, theirs, bytes));
          }
          return r;
        };
        const r = hog ? await withCpuHog(measure) : await measure();
        const label = `whole ${SIZE_MB} MiB blob${hog ? ', CPU hog on the other core' : ', idle machine'}`;
        console.log(`${label}: imgsrv ${r.imgsrv.map((x) => x.toFixed(0)).join(' ')}; distribution ${r.distribution.map((x) => x.toFixed(0)).join(' ')} MB/s`);
        rows.push({ section: SECTION, label: `distribution: ${label}`, value: median(r.distribution), unit: 'MB/s' });
        rows.push({ section: SECTION, label: `imgsrv: ${label}`, value: median(r.imgsrv), unit: 'MB/s', baseline: `distribution: ${label}`, ratio: median(r.imgsrv) / median(r.distribution), goal: { atLeast: 1.5 } });
      }

      const ranges = async (origin: string, path: string) => (await wrk(origin, { script: rangeScript(path, bytes), connections: 16, seconds: 5 })).requestsPerSecond;
      await ranges(server.url, blob);
      const rangeRates = { imgsrv: [] as number[], distribution: [] as number[] };
      for (let i = 0; i < 3; i++) {
        rangeRates.imgsrv.push(await ranges(server.url, blob));
        rangeRates.distribution.push(await ranges(peer.url, theirs));
      }
      const label = '1 MiB ranges at random offsets, 16 clients';
      rows.push({ section: SECTION, label: `distribution: ${label}`, value: median(rangeRates.distribution), unit: 'MiB/s' });
      rows.push({ section: SECTION, label: `imgsrv: ${label}`, value: median(rangeRates.imgsrv), unit: 'MiB/s', baseline: `distribution: ${label}`, ratio: median(rangeRates.imgsrv) / median(rangeRates.distribution), goal: { atLeast: 1 } });

      const sys = await syscallsPerMiB(server, blob, bytes);
      rows.push({ section: SECTION, label: 'imgsrv: syscalls per MiB of a whole-blob GET', value: sys.total, unit: 'calls', note: `${sys.top}; 2 MiB reads and writes (32 KiB once more than 4 downloads run), one copy into user space and one out of it` });
    } finally {
      await peer.stop();
      await server.stop();
    }

    rows.push(...(await manyAtOnce(work)));

    // 4 GiB up and down on a fresh server: the upload path (parts, verification, commit) and the download path.
    const big = join(work, 'big.bin');
    randomFile(big, 4096);
    const measured = await measureUpload({ work, size: 4096 * MB, digest: sha256(big), round: 0, path: 'contract', parts: [big], download: true });
    await rm(big);
    rows.push({ section: SECTION, label: 'imgsrv: peak RSS over a 4 GiB upload and download', value: measured.peakRss, unit: 'MB', goal: { below: 120 } });

    rows.push(...(await rounds(work)));
    return rows;
  } finally {
    await removeDir(work);
  }
}

/** 500 concurrent downloads of one 16 MiB blob, with /healthz probed meanwhile. */
async function manyAtOnce(work: string): Promise<Row[]> {
  const file = join(work, 'shared.bin');
  randomFile(file, 16);
  const digest = sha256(file);
  const server = await startServer({ dataDir: join(work, 'many'), env: { IMGSRV_LOG_LEVEL: 'error' } });
  try {
    await push(server.url, file, digest, `Basic ${Buffer.from(`bench:${server.token}`).toString('base64')}`);
    const path = `/v1/blobs/sha256:${digest}`;
    await get(server.url, path, 16 * MB);
    const before = await statusMb(server.process.pid!, 'VmRSS');
    const load = wrk(server.url, { paths: [path], connections: 500, seconds: 20, timeoutSeconds: 60 });
    const [result, latencies] = await Promise.all([load, probeHealth(server.url, load)]);
    const peak = await statusMb(server.process.pid!, 'VmHWM');
    if (result.requests < 500) throw new Error(`only ${result.requests} of 500 concurrent downloads completed`);
    const p99 = latencies.sort((a, b) => a - b)[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]!;
    console.log(`500 at once: ${result.requests} downloads of 16 MiB completed (${(result.bytesPerSecond / MB).toFixed(0)} MiB/s), /healthz p99 ${p99.toFixed(1)} ms over ${latencies.length} probes, RSS ${before.toFixed(0)} → peak ${peak.toFixed(0)} MB`);
    return [
      { section: SECTION, label: 'imgsrv: 500 concurrent downloads (16 MiB)', value: result.bytesPerSecond / MB, unit: 'MiB/s', note: `${result.requests} completed in 20 s, none failed` },
      { section: SECTION, label: 'imgsrv: /healthz p99 during the 500 downloads', value: p99, unit: 'ms', goal: { below: 100 }, note: `${latencies.length} probes` },
      { section: SECTION, label: 'imgsrv: peak RSS during the 500 downloads', value: peak, unit: 'MB', note: `${before.toFixed(0)} MB before` },
    ];
  } finally {
    await server.stop();
    await rm(file);
  }
}

/** 20 rounds of a 64 MiB upload and download on one server: does resident memory grow? */
async function rounds(work: string): Promise<Row[]> {
  const file = join(work, 'round.bin');
  randomFile(file, 64);
  const server = await startServer({ dataDir: join(work, 'rounds'), env: { IMGSRV_LOG_LEVEL: 'error' } });
  const auth = `Basic ${Buffer.from(`bench:${server.token}`).toString('base64')}`;
  try {
    const rss: number[] = [];
    for (let round = 1; round <= 20; round++) {
      // New bytes each round (the first 8 bytes are the round number), so nothing is deduplicated.
      execFileSync('sh', ['-c', `printf '%08d' ${round} | dd of=${file} bs=8 count=1 conv=notrunc status=none`]);
      const digest = sha256(file);
      await push(server.url, file, digest, auth);
      await get(server.url, `/v1/blobs/sha256:${digest}`, 64 * MB);
      await new Promise((r) => setTimeout(r, 200));
      rss.push(await statusMb(server.process.pid!, 'VmRSS'));
    }
    console.log(`20 rounds: RSS after each ${rss.map((x) => x.toFixed(0)).join(' ')} MB`);
    // RSS swings by some 10 MB with the collector's timing: a leak shows as a higher peak in the later rounds.
    const peak = (xs: number[]) => Math.max(...xs);
    return [
      {
        section: SECTION,
        label: 'imgsrv: RSS growth, peak of rounds 11-20 over 1-10 (64 MiB up+down)',
        value: peak(rss.slice(10)) - peak(rss.slice(0, 10)),
        unit: 'MB',
        goal: { below: 5 },
        note: `peaks ${peak(rss.slice(0, 10)).toFixed(0)} and ${peak(rss.slice(10)).toFixed(0)} MB; after round 1 ${rss[0]!.toFixed(0)}, after round 20 ${rss.at(-1)!.toFixed(0)}`,
      },
    ];
  } finally {
    await server.stop();
    await rm(file);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printTable(await downloadBench());
