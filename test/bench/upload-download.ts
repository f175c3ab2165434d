/**
 * `npm run bench`: upload and download throughput against the verify-and-store limit of the
 * same bytes on the same disk, measured in the same run.
 *
 *   baseline  = openssl dgst -sha256 FILE, then dd FILE → COPY with fsync (hash + durable copy)
 *   upload    = begin → 4 parallel part PUTs (curl) → complete → state `ready`, twice: with a
 *               declared part size (parts written in place, verified without a copy) and
 *               without one (parts concatenated into the blob), each on a fresh server
 *   download  = one GET of the whole blob (curl to /dev/null)
 *
 * Control requests use fetch; bytes move with curl, so the client costs little CPU. The disk of a
 * VM varies a lot from minute to minute, so each of BENCH_ROUNDS rounds (default 3) measures the
 * baseline and then imgsrv on a fresh server and data dir, and the medians are reported with the
 * server's peak RSS (VmHWM). The ratio column is the median over rounds of each round's ratio to
 * its own baseline. Size: BENCH_MB (default 1024); parts: BENCH_PARTS (default 4).
 */
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeDataDir, removeDir, startServer } from '../helpers/server.ts';

const execFile = promisify(execFileCb);
const MB = 1024 * 1024;
const sizeMb = Number(process.env.BENCH_MB ?? 1024);
const PARTS = Number(process.env.BENCH_PARTS ?? 4);

const now = () => performance.now() / 1000;
const rate = (bytes: number, s: number) => bytes / MB / s;
const row = (label: string, mbps: number, ratio: string, note: string) => console.log(`${label.padEnd(42)} ${mbps.toFixed(0).padStart(6)} MB/s ${ratio.padStart(6)}   ${note}`);

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Upload {
  partsS: number;
  storeS: number;
}

interface Round {
  hashS: number;
  copyS: number;
  placed: Upload;
  copied: Upload;
  downloadS: number;
  idleRss: number;
  peakRss: number;
}

async function main() {
  const work = await makeDataDir();
  const file = join(work, 'payload.bin');
  const size = sizeMb * MB;
  const partMb = Math.ceil(sizeMb / PARTS);
  console.log(`imgsrv bench: ${sizeMb} MiB of random bytes, ${PARTS} parallel parts, ${rounds} rounds, on ${work}`);
  execFileSync('sh', ['-c', `head -c ${size} /dev/urandom > ${file}`]);
  const partFiles = Array.from({ length: PARTS }, (_, i) => join(work, `part-${i + 1}`));
  partFiles.forEach((part, i) => execFileSync('dd', [`if=${file}`, `of=${part}`, `bs=${MB}`, `skip=${i * partMb}`, `count=${partMb}`, 'status=none']));
  try {
    const results: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const round = await measureRound({ work, file, size, partFiles, round: r });
      results.push(round);
      const up = (u: Upload) => rate(size, u.partsS + u.storeS).toFixed(0);
      console.log(
        `round ${r + 1}: baseline ${rate(size, round.hashS + round.copyS).toFixed(0)} MB/s, upload in place ${up(round.placed)} MB/s, upload copied ${up(round.copied)} MB/s, download ${rate(size, round.downloadS).toFixed(0)} MB/s`,
      );
    }
    const m = (f: (r: Round) => number) => median(results.map(f));
    const baseline = rate(size, m((x) => x.hashS + x.copyS));
    const download = rate(size, m((x) => x.downloadS));
    console.log('');
    console.log(`medians of ${rounds} rounds:`);
    row('baseline: openssl sha256 + fsync copy', baseline, '1.00', `hash ${m((x) => x.hashS).toFixed(2)} s + copy ${m((x) => x.copyS).toFixed(2)} s`);
    // Each round's ratio is against the baseline measured moments before it; the median of those
    // is robust to the disk's drift between rounds.
    const ratio = (seconds: (x: Round) => number) => m((x) => (x.hashS + x.copyS) / seconds(x)).toFixed(2);
    for (const [label, pick] of [
      [`upload: ${PARTS} parts, fixed size (in place)`, (x: Round) => x.placed],
      [`upload: ${PARTS} parts, free sizes (copied)`, (x: Round) => x.copied],
    ] as const) {
      const seconds = (x: Round) => pick(x).partsS + pick(x).storeS;
      row(label, rate(size, m(seconds)), ratio(seconds), `parts ${m((x) => pick(x).partsS).toFixed(2)} s + verify/store ${m((x) => pick(x).storeS).toFixed(2)} s`);
    }
    row('download: GET whole blob', download, ratio((x) => x.downloadS), `${m((x) => x.downloadS).toFixed(2)} s`);
    console.log(`server peak RSS: ${Math.max(...results.map((x) => x.peakRss)).toFixed(0)} MB (idle ${m((x) => x.idleRss).toFixed(0)} MB)`);
  } finally {
    await removeDir(work);
  }
}

async function measureRound(input: { work: string; file: string; size: number; partFiles: string[]; round: number }): Promise<Round> {
  const { work, file } = input;
  // Baseline: the verify-and-store limit of these bytes on this disk.
  execFileSync('sync');
  let t = now();
  const digest = execFileSync('openssl', ['dgst', '-sha256', '-r', file], { encoding: 'utf8' }).split(' ')[0]!;
  const hashS = now() - t;
  t = now();
  execFileSync('dd', [`if=${file}`, `of=${join(work, 'copy.bin')}`, `bs=${4 * MB}`, 'conv=fsync', 'status=none']);
  const copyS = now() - t;
  await rm(join(work, 'copy.bin'));
  const placed = await measureUpload({ ...input, digest, placed: true });
  const copied = await measureUpload({ ...input, digest, placed: false });
  return { hashS, copyS, placed: placed.upload, copied: copied.upload, downloadS: copied.downloadS, idleRss: copied.idleRss, peakRss: Math.max(placed.peakRss, copied.peakRss) };
}

/** One upload (and download) of the file on a fresh server and data dir. */
async function measureUpload(input: { work: string; size: number; partFiles: string[]; round: number; digest: string; placed: boolean }) {
  const { work, size, partFiles, digest } = input;
  const server = await startServer({ dataDir: join(work, `data-${input.round}-${input.placed ? 'placed' : 'copied'}`) });
  const headers = { authorization: `Bearer ${server.token}` };
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}${path}`, { ...init, headers: { ...headers, 'content-type': 'application/json', ...init.headers } });
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const rss = async () => Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${server.process.pid}/status`, 'utf8'))![1]) / 1024;
  try {
    const idleRss = await rss();
    execFileSync('sync');
    const t0 = now();
    const partSize = (await stat(partFiles[0]!)).size;
    const begin = { expected_digest: `sha256:${digest}`, expected_size_bytes: size, ...(input.placed && { part_size_bytes: partSize }) };
    const session = await api('/v1/uploads', { method: 'POST', body: JSON.stringify(begin) });
    const parts = await Promise.all(
      partFiles.map(async (part, i) => {
        const args = ['-sS', '--fail-with-body', '-T', part, '-H', `Authorization: Bearer ${server.token}`, '-H', 'Content-Type: application/octet-stream'];
        const { stdout } = await execFile('curl', [...args, `${server.url}/v1/uploads/${String(session.id)}/parts/${i + 1}`]);
        const p = JSON.parse(stdout) as { etag: string; size_bytes: number };
        return { number: i + 1, etag: p.etag, size_bytes: p.size_bytes };
      }),
    );
    const t1 = now();
    await api(`/v1/uploads/${String(session.id)}/complete`, { method: 'POST', body: JSON.stringify({ parts }) });
    for (let state = ''; state !== 'ready'; await new Promise((r) => setTimeout(r, 20))) {
      state = String((await api(`/v1/uploads/${String(session.id)}`)).state);
      if (state === 'failed') throw new Error('upload failed verification');
    }
    const t2 = now();

    const t3 = now();
    await execFile('curl', ['-sS', '--fail', '-o', '/dev/null', `${server.url}/v1/blobs/sha256:${digest}`]);
    const downloadS = now() - t3;
    const stored = await stat(join(server.dataDir, 'blobs', 'sha256', digest.slice(0, 2), digest));
    if (stored.size !== size) throw new Error(`stored blob has ${stored.size} bytes, expected ${size}`);
    return { upload: { partsS: t1 - t0, storeS: t2 - t1 }, downloadS, idleRss, peakRss: await rss() };
  } finally {
    await server.stop();
    await removeDir(server.dataDir);
  }
}

await main();
