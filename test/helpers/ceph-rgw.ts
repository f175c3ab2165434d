import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real, throw-away Ceph RADOS Gateway for the S3 tests, from Debian bookworm's packages
 * (`ceph-mon ceph-osd radosgw`, installed by scripts/install-test-deps.sh): one monitor, one OSD
 * keeping objects in RAM (memstore), one radosgw; no mgr, no systemd, every file under `dir`,
 * every socket on 127.0.0.1. It starts in about 1.5 s, so each test process may start its own;
 * concurrent gateways never share a directory or a port.
 */
export interface CephRgw {
  /** Path-style endpoint `http://127.0.0.1:PORT` (`rgw dns name = localhost` for virtual-host style). */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `us-east-1`; RGW accepts any region in the signature, the SDK just needs one. */
  region: string;
  /** Configuration, logs (`log/`), monitor store and sockets; removed by `stop()`. */
  dir: string;
  /** SIGKILLs every daemon and removes `dir`: all buckets and objects are gone. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs radosgw only, an S3 outage: connections are refused, open ones reset; data stays. */
  stopGateway(): Promise<void>;
  /** Starts radosgw again on the same endpoint; resolves once it answers, fails with its log after 30 s. */
  startGateway(): Promise<void>;
  /** SIGSTOPs radosgw: connections are accepted by the kernel and never answered (a hung store). */
  pauseGateway(): void;
  /** SIGCONTs a paused radosgw. */
  resumeGateway(): void;
}

export interface CephRgwOptions {
  /**
   * memstore capacity, 4 GiB by default. Nothing is reserved up front, but the OSD's RAM grows
   * to about twice the bytes stored, and a full OSD makes writes hang without an error: size it
   * above the test data (RGW's garbage collector frees deleted objects within ~5 s).
   */
  memBytes?: number;
  /** Directory to run in (created; must be empty); by default a new one under the OS temp dir. */
  dir?: string;
  /** Limit for the whole start; past it the start fails with the daemons' log tails. */
  timeoutMs?: number;
}

/** Fixed keys of the one S3 user, so a failing test can be replayed with the same settings. */
export const CEPH_RGW_CREDENTIALS = { accessKeyId: 'IMGSRVTESTACCESSKEY0', secretAccessKey: 'imgsrv-test-secret-key-not-a-secret-0000' } as const;
const PREFIX = 'imgsrv-ceph-';
const OWNER_FILE = 'owner.pid';
/** Ports are picked free, then bound by the daemons: another process may take one in between. */
const START_ATTEMPTS = 4;
/** What a monitor or radosgw logs before it exits for a taken port (`ms bind retry count = 1`). */
const PORT_CLASH = /Address already in use/;
/** sun_path is 108 bytes: the admin sockets under `dir` must fit. */
const MAX_SOCKET_PATH = 107;

type DaemonName = 'mon.a' | 'osd.0' | 'client.rgw';
interface Daemon {
  name: DaemonName;
  child: ChildProcess;
  /** Resolves when the process has exited or could not be spawned (`error`). */
  exited: Promise<void>;
  error?: Error;
}
interface Cluster {
  dir: string;
  daemons: Map<DaemonName, Daemon>;
}

/**
 * Starts a new cluster in its own directory on free ports, again on other ports when one was
 * taken meanwhile. Fails, never skips, with the daemons' log tails when anything does not start,
 * leaving no process or file behind. The daemons die with this process however it ends.
 */
export async function startCephRgw(opts: CephRgwOptions = {}): Promise<CephRgw> {
  const memBytes = opts.memBytes ?? 4 * 2 ** 30;
  if (!Number.isSafeInteger(memBytes) || memBytes <= 0) throw new Error(`startCephRgw: memBytes must be a positive integer, not ${memBytes}`);
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const cluster: Cluster = { dir: await makeDir(opts.dir), daemons: new Map() };
  track(cluster);
  for (let attempt = 1; ; attempt++) {
    const [mon, rgw] = (await freePorts(2)) as [number, number];
    try {
      await bootstrap(cluster, { mon, rgw, memBytes, deadline });
      return handle(cluster, `http://127.0.0.1:${rgw}`);
    } catch (err) {
      await killAll(cluster);
      if (!(err instanceof StartError && PORT_CLASH.test(err.message)) || attempt === START_ATTEMPTS) {
        await remove(cluster);
        throw err;
      }
      for (const entry of await readdir(cluster.dir)) if (entry !== OWNER_FILE) await rm(join(cluster.dir, entry), { recursive: true, force: true });
    }
  }
}

function handle(cluster: Cluster, endpoint: string): CephRgw {
  return {
    endpoint,
    ...CEPH_RGW_CREDENTIALS,
    region: 'us-east-1',
    dir: cluster.dir,
    async stop() {
      await killAll(cluster);
      await remove(cluster);
    },
    stopGateway: () => kill(cluster.daemons.get('client.rgw')),
    pauseGateway: () => void cluster.daemons.get('client.rgw')?.child.kill('SIGSTOP'),
    resumeGateway: () => void cluster.daemons.get('client.rgw')?.child.kill('SIGCONT'),
    async startGateway() {
      if (!live.has(cluster)) throw new Error('startGateway: the cluster was stopped');
      if (!cluster.daemons.has('client.rgw')) await startGateway(cluster, endpoint, Date.now() + 30_000);
    },
  };
}

/**
 * Each daemon starts once the one it needs is ready, as its admin socket tells: an OSD that finds
 * no monitor retries only after 3 s, and pools radosgw creates while the OSD is down get their PGs
 * only at the monitor's next 5 s tick. The OSD registers itself when it boots (auth none), which
 * saves `ceph osd new`, a Python CLI taking 0.7-1 s. Every wait also watches the daemons.
 */
async function bootstrap(cluster: Cluster, o: { mon: number; rgw: number; memBytes: number; deadline: number }): Promise<void> {
  const { dir } = cluster;
  const fsid = randomUUID();
  const monmap = join(dir, 'monmap');
  await Promise.all(['run', 'log', 'mon', 'osd', 'rgw', 'luarocks'].map((d) => mkdir(join(dir, d))));
  await writeFile(join(dir, 'ceph.conf'), cephConf({ dir, fsid, monPort: o.mon, rgwPort: o.rgw, memBytes: o.memBytes }));
  await Promise.all([
    tool(cluster, o.deadline, 'monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${o.mon}]`, monmap]).then(() =>
      tool(cluster, o.deadline, 'ceph-mon', ['--id', 'a', '--mkfs', '--monmap', monmap]),
    ),
    tool(cluster, o.deadline, 'ceph-osd', ['--id', '0', '--mkfs', '--osd-uuid', randomUUID(), '--no-mon-config']),
  ]);
  spawnDaemon(cluster, 'mon.a', 'ceph-mon', ['--id', 'a']);
  await waitFor(cluster, { what: 'monitor quorum', deadline: o.deadline, until: () => daemonState(cluster, 'mon.a', 'mon_status', 'leader') });
  spawnDaemon(cluster, 'osd.0', 'ceph-osd', ['--id', '0']);
  await waitFor(cluster, { what: 'OSD active', deadline: o.deadline, until: () => daemonState(cluster, 'osd.0', 'status', 'active') });
  await startGateway(cluster, `http://127.0.0.1:${o.rgw}`, o.deadline);
  const { accessKeyId, secretAccessKey } = CEPH_RGW_CREDENTIALS;
  await tool(cluster, o.deadline, 'radosgw-admin', ['user', 'create', '--uid', 'imgsrv-test', '--display-name', 'imgsrv test', '--access-key', accessKeyId, '--secret-key', secretAccessKey]);
}

/** Resolves once our radosgw answers: an answer from whoever else took the port does not count. */
async function startGateway(cluster: Cluster, endpoint: string, deadline: number): Promise<void> {
  const { child } = spawnDaemon(cluster, 'client.rgw', 'radosgw', ['--name', 'client.rgw']);
  const port = Number(new URL(endpoint).port);
  const ours = async () => ((await answersHttp(endpoint)) && (await listensOn(child.pid, port)) ? true : undefined);
  await waitFor(cluster, { what: `radosgw answering ${endpoint}`, deadline, until: ours });
}

/**
 * What a lone, unauthenticated, loopback-only cluster needs: msgr2 only on 127.0.0.1 (else OSD
 * ports bind 0.0.0.0); auth none (no keyrings); run, log, pid, socket and keyring paths under `dir`
 * (the defaults under /var need the ceph user and would be shared); one replica, 8 PGs a pool, no
 * autoscaler (no mgr); `mon data avail crit = 0` (else the monitor stops below 5% free disk);
 * `paxos propose interval = 0.01` (start 12.9 s → 1.4 s, no 2 s stall on the first writes); one bind
 * attempt (else a taken port is retried for 15 s). radosgw: crc mode (with auth none it fails to
 * fetch the mon config otherwise); gc at once (else deleted data stays 2 h and fills memstore).
 */
function cephConf(o: { dir: string; fsid: string; monPort: number; rgwPort: number; memBytes: number }): string {
  const { dir } = o;
  return `[global]
fsid = ${o.fsid}
mon host = [v2:127.0.0.1:${o.monPort}]
ms bind msgr1 = false
ms bind retry count = 1
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
run dir = ${dir}/run
log file = ${dir}/log/$name.log
pid file = ${dir}/run/$name.pid
admin socket = ${dir}/run/$name.asok
keyring = ${dir}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon data avail crit = 0
paxos propose interval = 0.01
[mon]
mon data = ${dir}/mon
[osd]
osd data = ${dir}/osd
osd objectstore = memstore
memstore device bytes = ${o.memBytes}
[client.rgw]
ms mon client mode = crc
rgw frontends = beast endpoint=127.0.0.1:${o.rgwPort}
rgw dns name = localhost
rgw data = ${dir}/rgw
rgw luarocks location = ${dir}/luarocks
rgw gc obj min wait = 0
rgw gc processor period = 5
`;
}

/** Only our config file counts: no CEPH_ARGS, nothing from /etc/ceph. */
function cephEnv(dir: string): NodeJS.ProcessEnv {
  const { CEPH_ARGS: _ignored, ...env } = process.env;
  return { ...env, CEPH_CONF: join(dir, 'ceph.conf') };
}

/**
 * A daemon in the foreground as our child, output to `log/NAME.out`. `setpriv --pdeathsig KILL`
 * has the kernel kill it when this process dies in any way, SIGKILL included, which no exit hook
 * can promise; unref'd, so a test that forgets `stop()` still ends (and the exit hook reaps).
 */
function spawnDaemon(cluster: Cluster, name: DaemonName, bin: string, args: string[]): Daemon {
  const out = openSync(join(cluster.dir, 'log', `${name}.out`), 'a');
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', bin, '-f', '-c', join(cluster.dir, 'ceph.conf'), ...args], { stdio: ['ignore', out, out], env: cephEnv(cluster.dir) });
  closeSync(out);
  child.unref();
  const daemon: Daemon = { name, child, exited: Promise.resolve() };
  daemon.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()).once('error', (err) => resolve(void (daemon.error = err))));
  cluster.daemons.set(name, daemon);
  void daemon.exited.then(() => cluster.daemons.get(name) === daemon && cluster.daemons.delete(name));
  return daemon;
}

/** A one-shot Ceph tool, SIGKILLed at the deadline (a command only a mgr answers would hang). */
async function tool(cluster: Cluster, deadline: number, bin: string, args: string[]): Promise<string> {
  const timeout = Math.max(1, deadline - Date.now());
  const run = new Promise<string>((resolve, reject) => {
    execFile(bin, ['-c', join(cluster.dir, 'ceph.conf'), ...args], { env: cephEnv(cluster.dir), timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) =>
      err ? reject(new Error(`${bin} ${args.join(' ')}: ${err.killed ? `killed after ${timeout} ms` : err.message}\n${stdout}${stderr}`)) : resolve(stdout),
    );
  });
  return waitFor(cluster, { what: `${bin} ${args[0]}`, deadline, until: () => run });
}

/**
 * Polls `until` every 50 ms for a defined result. Rejects with a StartError carrying the log tails
 * when the deadline passes, when `until` throws, or at once when a daemon started so far exits.
 */
async function waitFor<T>(cluster: Cluster, o: { what: string; deadline: number; until: () => Promise<T | undefined> }): Promise<T> {
  let settled = false;
  let dead: Daemon | undefined;
  const died = new Promise<never>((_, reject) => {
    for (const d of cluster.daemons.values()) void d.exited.then(() => reject(new Error(`${(dead ??= d).name} exited (${d.child.exitCode ?? d.child.signalCode ?? d.error?.message})`)));
  });
  died.catch(() => undefined);
  const poll = async (): Promise<T> => {
    for (;;) {
      const result = await o.until();
      if (result !== undefined) return result;
      if (settled) throw new Error('abandoned');
      if (Date.now() > o.deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    return await Promise.race([poll(), died]);
  } catch (err) {
    throw new StartError(`Ceph RGW did not start (${o.what}): ${(err as Error).message}\n${await logTails(cluster.dir, dead?.name)}`);
  } finally {
    settled = true;
  }
}

class StartError extends Error {}

/** True once radosgw serves a request; false while the port refuses or the request fails. */
function answersHttp(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 1000 }, (res) => resolve(res.resume().statusCode === 200));
    req.on('timeout', () => req.destroy()).on('error', () => resolve(false)).end();
  });
}

/**
 * Whether `pid` holds the socket listening on 127.0.0.1:`port`. Another test's gateway that got
 * the same port would answer just as well, with the same fixed keys, while ours fails to bind.
 */
async function listensOn(pid: number | undefined, port: number): Promise<boolean> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const rows = (await readFile('/proc/net/tcp', 'utf8')).split('\n').map((l) => l.trim().split(/\s+/));
  const sockets = new Set(rows.filter((f) => f[1] === local && f[3] === '0A').map((f) => `socket:[${f[9]}]`));
  for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) if (sockets.has(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''))) return true;
  return false;
}

/** True once the daemon's admin socket reports `state` as `want`. */
async function daemonState(cluster: Cluster, name: DaemonName, prefix: string, want: string): Promise<true | undefined> {
  const reply = (await adminSocket(join(cluster.dir, 'run', `${name}.asok`), { prefix })) as { state?: unknown } | undefined;
  return reply?.state === want ? true : undefined;
}

/**
 * One admin socket command, spoken directly rather than through the Python `ceph daemon`: JSON
 * and a NUL go in; a 32-bit length, the JSON reply, and the end of the connection come out.
 */
function adminSocket(path: string, command: object): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect(path, () => sock.end(`${JSON.stringify(command)}\0`));
    sock.setTimeout(1000, () => sock.destroy()).on('error', () => resolve(undefined));
    sock.on('data', (d: Buffer) => chunks.push(d)).on('close', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).subarray(4).toString('utf8')));
      } catch {
        resolve(undefined);
      }
    });
  });
}

async function kill(daemon: Daemon | undefined): Promise<void> {
  if (!daemon) return;
  daemon.child.ref(); // else this process may end before the exit it awaits is reported
  daemon.child.kill('SIGKILL');
  await daemon.exited;
}

async function killAll(cluster: Cluster): Promise<void> {
  await Promise.all([...cluster.daemons.values()].map(kill));
}

/** Clusters not yet stopped: killed and removed when this process exits without stopping them. */
const live = new Set<Cluster>();
let exitHookInstalled = false;

function track(cluster: Cluster): void {
  live.add(cluster);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) {
      for (const d of c.daemons.values()) d.child.kill('SIGKILL');
      rmSync(c.dir, { recursive: true, force: true, maxRetries: 5 }); // a daemon may still write until SIGKILL lands
    }
  });
}

async function remove(cluster: Cluster): Promise<void> {
  live.delete(cluster);
  await rm(cluster.dir, { recursive: true, force: true });
}

async function makeDir(dir: string | undefined): Promise<string> {
  if (dir === undefined) {
    await sweepStale();
    dir = await mkdtemp(join(tmpdir(), PREFIX));
  } else {
    await mkdir(dir, { recursive: true });
    if ((await readdir(dir)).length > 0) throw new Error(`startCephRgw: ${dir} is not empty`);
  }
  if (join(dir, 'run', 'client.rgw.asok').length > MAX_SOCKET_PATH) throw new Error(`startCephRgw: ${dir} is too long for the daemons' unix sockets`);
  await writeFile(join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

/**
 * Removes the directories of earlier runs that died without their exit hook (SIGKILL, a runner's
 * time-out): pdeathsig took their daemons, not their files. A directory whose owner lives is kept.
 */
async function sweepStale(): Promise<void> {
  for (const entry of (await readdir(tmpdir())).filter((e) => e.startsWith(PREFIX))) {
    const dir = join(tmpdir(), entry);
    const owner = Number(await readFile(join(dir, OWNER_FILE), 'utf8').catch(() => NaN));
    const young = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? 0) < 60_000;
    if (Number.isInteger(owner) ? isAlive(owner) : young) continue;
    await rm(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Distinct ports free right now (held open together while picking). */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  await Promise.all(servers.map((s) => new Promise<void>((resolve, reject) => s.once('error', reject).listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

/** The last lines of every daemon's log and output, the daemon that died first: what a failed start reports. */
async function logTails(dir: string, first?: DaemonName, lines = 25): Promise<string> {
  const logDir = join(dir, 'log');
  const rank = (f: string) => (first !== undefined && f.startsWith(`${first}.`) ? 0 : 1);
  const files = (await readdir(logDir).catch(() => [])).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const tails = await Promise.all(
    files.map(async (f) => {
      const text = (await readFile(join(logDir, f), 'utf8').catch(() => '')).trimEnd();
      return text && `--- ${f}\n${text.split('\n').slice(-lines).map((l) => l.slice(0, 400)).join('\n')}`;
    }),
  );
  return tails.filter(Boolean).join('\n') || `(no logs in ${logDir})`;
}
