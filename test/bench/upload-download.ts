/**
 * `npm run bench` (first part): upload and download throughput against two baselines measured
 * in the same run on the same file and disk:
 *
 *   limit         = openssl dgst -sha256 FILE, then dd FILE → COPY with fsync (hash + durable copy):
 *                   the verify-and-store limit of these bytes on this disk
 *   distribution  = Debian's docker-registry (distribution 2.8): monolithic blob push (POST, then
 *                   PUT ?digest= with the whole file) and a whole-blob GET
 *   imgsrv upload = begin → PARTS parallel part PUTs (curl) → complete → state `ready`, on a fresh
 *                   server each: the contract path (equal parts, no declared size), the extension
 *                   path (`part_size_bytes` declared) and parts of unequal sizes (copied at commit)
 *   imgsrv download = one GET of the whole blob (curl to /dev/null)
 *   OCI push/pull   = the same blob pushed to imgsrv's /v2 and to distribution: monolithic (POST,
 *                   then PUT ?digest= with the whole file, as oras does) and chunked (64 MiB
 *                   PATCHes with Content-Range, then PUT ?digest=), and pulled whole
 *
 * Bytes move with curl for every server alike, so the client costs the same. The disk of a VM
 * varies from minute to minute, so each of BENCH_ROUNDS rounds (default 3) measures every
 * baseline and imgsrv path in turn, and each ratio is the median over rounds of that round's
 * ratio. Size: BENCH_MB (default 512); parts: BENCH_PARTS (default 4).
 */
import { execFile as execFileCb, execFileSync } from 'node:child_process';
import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeDataDir, removeDir, startServer } from '../helpers/server.ts';
import { startDistribution } from './distribution.ts';
import { median, printTable, type Row } from './table.ts';

const execFile = promisify(execFileCb);
const MB = 1024 * 1024;
const sizeMb = Number(process.env.BENCH_MB ?? 512);
const PARTS = Number(process.env.BENCH_PARTS ?? 4);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

const now = () => performance.now() / 1000;
const rate = (bytes: number, s: number) => bytes / MB / s;

export type Path = 'contract' | 'declared' | 'unequal';
const PATHS: [Path, string][] = [
  ['contract', `upload: ${PARTS} equal parts (contract path)`],
  ['declared', `upload: ${PARTS} parts, part_size_bytes declared`],
  ['unequal', `upload: ${PARTS} parts of unequal sizes (copied)`],
];

interface OciTimes {
  monolithicS: number;
  chunkedS: number;
  pullS: number;
}

interface Round {
  limitS: number;
  peerPushS: number;
  peerPullS: number;
  peerOci: OciTimes;
  oci: OciTimes;
  upload: Record<Path, { partsS: number; commitS: number }>;
  downloadS: number;
  peakRss: number;
}

const UPLOADS = 'uploads and OCI push/pull (one file, same disk)';

export async function uploadBench(): Promise<Row[]> {
  const work = await makeDataDir();
  const file = join(work, 'payload.bin');
  const size = sizeMb * MB;
  console.log(`imgsrv bench: ${sizeMb} MiB of random bytes, ${PARTS} parallel parts, ${rounds} rounds, on ${work}`);
  execFileSync('sh', ['-c', `head -c ${size} /dev/urandom > ${file}`]);
  const digest = execFileSync('openssl', ['dgst', '-sha256', '-r', file], { encoding: 'utf8' }).split(' ')[0]!;
  const equal = Math.ceil(size / PARTS);
  // Unequal: part 1 sets the pattern, the others break it (they are kept apart and copied at commit).
  const unequal = [Math.floor(equal / 2), ...Array.from({ length: PARTS - 1 }, () => Math.ceil((size - Math.floor(equal / 2)) / (PARTS - 1)))];
  const layouts: Record<Path, string[]> = { contract: [], declared: [], unequal: [] };
  const chunks: string[] = [];
  for (const [name, sizes] of [['equal', split(size, equal)], ['unequal', cut(size, unequal)], ['chunk', split(size, 64 * MB)]] as const) {
    let offset = 0;
    const files = sizes.map((partSize, i) => {
      const part = join(work, `${name}-${i + 1}`);
      execFileSync('dd', [`if=${file}`, `of=${part}`, 'bs=1M', 'iflag=skip_bytes,count_bytes', `skip=${offset}`, `count=${partSize}`, 'status=none']);
      offset += partSize;
      return part;
    });
    if (name === 'equal') layouts.contract = layouts.declared = files;
    else if (name === 'unequal') layouts.unequal = files;
    else chunks.push(...files);
  }
  try {
    const results: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      const round = await measureRound({ work, file, size, digest, layouts, chunks, round: r });
      results.push(round);
      const up = (p: Path) => rate(size, round.upload[p].partsS + round.upload[p].commitS).toFixed(0);
      console.log(`round ${r + 1}: limit ${rate(size, round.limitS).toFixed(0)}, distribution push ${rate(size, round.peerPushS).toFixed(0)}, contract ${up('contract')}, declared ${up('declared')}, unequal ${up('unequal')}, download ${rate(size, round.downloadS).toFixed(0)} (distribution ${rate(size, round.peerPullS).toFixed(0)}) MB/s`);
    }
    const m = (f: (r: Round) => number) => median(results.map(f));
    const ratio = (num: (x: Round) => number, den: (x: Round) => number) => m((x) => num(x) / den(x));
    const mbps = (seconds: number) => rate(size, seconds);
    const LIMIT = 'limit: openssl sha256 + fsync copy';
    const PEER = 'distribution 2.8: monolithic push';
    const rows: Row[] = [
      { section: UPLOADS, label: LIMIT, value: mbps(m((x) => x.limitS)), unit: 'MB/s', note: `${m((x) => x.limitS).toFixed(2)} s` },
      { section: UPLOADS, label: PEER, value: mbps(m((x) => x.peerPushS)), unit: 'MB/s', baseline: LIMIT, ratio: ratio((x) => x.limitS, (x) => x.peerPushS) },
    ];
    for (const [path, label] of PATHS) {
      const seconds = (x: Round) => x.upload[path].partsS + x.upload[path].commitS;
      rows.push({
        section: UPLOADS,
        label,
        value: mbps(m(seconds)),
        unit: 'MB/s',
        baseline: LIMIT,
        ratio: ratio((x) => x.limitS, seconds),
        note: `${ratio((x) => x.peerPushS, seconds).toFixed(2)}× distribution; parts ${m((x) => x.upload[path].partsS).toFixed(2)} s + verify/commit ${m((x) => x.upload[path].commitS).toFixed(2)} s`,
      });
    }
    for (const [label, pick] of [
      ['OCI push, monolithic PUT', (t: OciTimes) => t.monolithicS],
      ['OCI push, 64 MiB chunks', (t: OciTimes) => t.chunkedS],
      ['OCI pull, whole blob', (t: OciTimes) => t.pullS],
    ] as const) {
      const peer = `distribution: ${label}`;
      rows.push({ section: UPLOADS, label: peer, value: mbps(m((x) => pick(x.peerOci))), unit: 'MB/s' });
      rows.push({ section: UPLOADS, label: `imgsrv: ${label}`, value: mbps(m((x) => pick(x.oci))), unit: 'MB/s', baseline: peer, ratio: ratio((x) => pick(x.peerOci), (x) => pick(x.oci)) });
    }
    rows.push({ section: UPLOADS, label: 'imgsrv: peak RSS over an upload and a download', value: Math.max(...results.map((x) => x.peakRss)), unit: 'MB', note: `${sizeMb} MiB` });
    return rows;
  } finally {
    await removeDir(work);
  }
}

/** Part sizes of `size` bytes in parts of `part` (the last one the remainder). */
const split = (size: number, part: number) => Array.from({ length: Math.ceil(size / part) }, (_, i) => Math.min(part, size - i * part));
/** `sizes` trimmed so that they add up to `size`. */
const cut = (size: number, sizes: number[]) => sizes.map((s, i) => Math.max(0, Math.min(s, size - sizes.slice(0, i).reduce((a, b) => a + b, 0)))).filter((s) => s > 0);

async function measureRound(input: { work: string; file: string; size: number; digest: string; layouts: Record<Path, string[]>; chunks: string[]; round: number }): Promise<Round> {
  const { work, file } = input;
  execFileSync('sync');
  const t = now();
  execFileSync('openssl', ['dgst', '-sha256', '-r', file]);
  execFileSync('dd', [`if=${file}`, `of=${join(work, 'copy.bin')}`, `bs=${4 * MB}`, 'conv=fsync', 'status=none']);
  const limitS = now() - t;
  await rm(join(work, 'copy.bin'));

  const peer = await startDistribution(join(work, `distribution-${input.round}`));
  let peerOci: OciTimes;
  try {
    peerOci = await measureOci({ url: peer.url, file, digest: input.digest, size: input.size, chunks: input.chunks });
  } finally {
    await peer.stop();
    await rm(join(work, `distribution-${input.round}`), { recursive: true, force: true });
  }
  const { monolithicS: peerPushS, pullS: peerPullS } = peerOci;

  const upload = {} as Round['upload'];
  let downloadS = 0;
  let peakRss = 0;
  for (const [path] of PATHS) {
    const measured = await measureUpload({ ...input, path, parts: input.layouts[path], download: path === 'contract' });
    upload[path] = measured.upload;
    if (path === 'contract') downloadS = measured.downloadS;
    peakRss = Math.max(peakRss, measured.peakRss);
  }
  // The registry on a server of its own, so that no push is answered by a blob uploaded before.
  const server = await startServer({ dataDir: join(work, `data-${input.round}-oci`) });
  let oci: OciTimes;
  try {
    oci = await measureOci({ url: server.url, file, digest: input.digest, size: input.size, chunks: input.chunks, auth: `Basic ${Buffer.from(`bench:${server.token}`).toString('base64')}` });
  } finally {
    await server.stop();
    await removeDir(server.dataDir);
  }
  return { limitS, peerPushS, peerPullS, peerOci, oci, upload, downloadS, peakRss };
}

/** Begins a blob upload in a registry's `repository` (POST) and answers where it goes on. `auth` for imgsrv. */
async function beginPush(url: string, repository: string, auth?: string): Promise<URL> {
  const res = await fetch(`${url}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: auth ? { authorization: auth } : {} });
  if (res.status !== 202) throw new Error(`POST uploads: ${res.status} ${await res.text()}`);
  return new URL(res.headers.get('location')!, url);
}

const withDigest = (location: URL, digest: string) => {
  const u = new URL(location);
  u.searchParams.set('digest', `sha256:${digest}`);
  return u.href;
};

/** Pushes a file to a registry's `repository` monolithically (POST, then PUT ?digest= with the whole file, as oras does). */
export async function pushMonolithic(input: { url: string; repository: string; file: string; digest: string; auth?: string }): Promise<void> {
  const location = await beginPush(input.url, input.repository, input.auth);
  await execFile('curl', ['-sS', '--fail', '-X', 'PUT', '-T', input.file, '-H', 'Content-Type: application/octet-stream', ...(input.auth ? ['-H', `Authorization: ${input.auth}`] : []), withDigest(location, input.digest)]);
}

/** A figure of `/proc/PID/status` in MB: resident memory now (VmRSS) or at its peak (VmHWM). */
export const statusMb = async (pid: number, field: 'VmRSS' | 'VmHWM') => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/**
 * Pushes the file to a registry's `/v2` monolithically and in chunks (into two repositories, so
 * the second push is not answered from the first), and pulls it. `auth` for imgsrv.
 */
async function measureOci(input: { url: string; file: string; digest: string; size: number; chunks: string[]; auth?: string }): Promise<OciTimes> {
  const headers: string[] = input.auth ? ['-H', `Authorization: ${input.auth}`] : [];
  execFileSync('sync');
  let t = now();
  await pushMonolithic({ ...input, repository: 'bench/monolithic' });
  const monolithicS = now() - t;
  execFileSync('sync');
  t = now();
  let location = await beginPush(input.url, 'bench/chunked', input.auth);
  let offset = 0;
  for (const chunk of input.chunks) {
    const length = (await stat(chunk)).size;
    const out = await execFile('curl', ['-sS', '--fail', '-D', '-', '-o', '/dev/null', '-X', 'PATCH', '-T', chunk, '-H', 'Content-Type: application/octet-stream', '-H', `Content-Range: ${offset}-${offset + length - 1}`, ...headers, location.href]);
    location = new URL(/^location: (.+)$/im.exec(out.stdout)![1]!.trim(), input.url);
    offset += length;
  }
  await execFile('curl', ['-sS', '--fail', '-X', 'PUT', ...headers, withDigest(location, input.digest)]);
  const chunkedS = now() - t;
  t = now();
  await execFile('curl', ['-sS', '--fail', '-o', '/dev/null', ...headers, `${input.url}/v2/bench/monolithic/blobs/sha256:${input.digest}`]);
  const pullS = now() - t;
  return { monolithicS, chunkedS, pullS };
}

/** One upload (and, for one path, the download) of the file on a fresh server and data dir (`env`: its blob storage). */
export async function measureUpload(input: { work: string; size: number; digest: string; round: number; path: Path; parts: string[]; download: boolean; env?: Record<string, string> }) {
  const { work, size, digest } = input;
  const server = await startServer({ dataDir: join(work, `data-${input.round}-${input.path}`), env: input.env });
  const headers = { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' };
  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}${path}`, { ...init, headers });
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  try {
    execFileSync('sync');
    const t0 = now();
    const begin = { expected_digest: `sha256:${digest}`, expected_size_bytes: size, ...(input.path === 'declared' && { part_size_bytes: (await stat(input.parts[0]!)).size }) };
    const session = await api('/v1/uploads', { method: 'POST', body: JSON.stringify(begin) });
    const parts = await Promise.all(
      input.parts.map(async (part, i) => {
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
    let downloadS = 0;
    if (input.download) {
      const t3 = now();
      await execFile('curl', ['-sS', '--fail', '-o', '/dev/null', `${server.url}/v1/blobs/sha256:${digest}`]);
      downloadS = now() - t3;
    }
    return { upload: { partsS: t1 - t0, commitS: t2 - t1 }, downloadS, peakRss: await statusMb(server.process.pid!, 'VmHWM') };
  } finally {
    await server.stop();
    await removeDir(server.dataDir);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printTable(await uploadBench());
