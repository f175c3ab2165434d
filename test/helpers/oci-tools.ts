import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

/**
 * The real OCI clients (skopeo, podman, oras) and Debian's docker-registry as the reference
 * registry, driven as child processes. Every path a tool would otherwise take from the machine
 * (config, credentials, policy, storage, caches, temp files) points into one temp dir per test;
 * checked with strace: of the global paths only per-host certs.d directories are still looked up,
 * and none exists.
 */

export interface ToolResult {
  /** The command line as run, for messages. */
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** stdout unchanged, for byte comparisons (`skopeo inspect --raw`). */
  stdoutBytes: Buffer;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed (for `--password-stdin`). Without it stdin is empty. */
  input?: string;
  cwd?: string;
  /** Default 120 s; the whole process group is SIGKILLed when it passes. */
  timeoutMs?: number;
  /**
   * `success` (default): throws unless the exit code is 0. `failure`: throws if it is 0, for the
   * refusals a test expects (wrong password, no credentials). Either way the error quotes the
   * command line and everything it printed.
   */
  expect?: 'success' | 'failure';
}

export interface ProcessOptions extends RunOptions {
  command: string;
  args: string[];
  /** The complete environment; nothing is inherited. */
  env: Record<string, string>;
  /** Aborting kills the process group (a test's cleanup ends what is still running). */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const quote = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);

/**
 * Runs one command to completion in its own process group, so a timeout or an abort also ends
 * whatever it spawned. A command that is not installed fails like any other (nothing is skipped).
 */
export function runProcess(opts: ProcessOptions): Promise<ToolResult> {
  const command = [opts.command, ...opts.args].map(quote).join(' ');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(opts.command, opts.args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let ended: string | undefined;
    const killGroup = (why: string) => {
      ended ??= why;
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(() => killGroup(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => killGroup('aborted by cleanup');
    const reap = () => killGroup('test process exiting');
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      process.off('exit', reap);
      settle();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    process.once('exit', reap);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {}); // a tool that exits without reading stdin is not an error here
    child.stdin.end(opts.input ?? '');
    child.once('error', (e) => finish(() => reject(new Error(`${command}: ${e.message} (is it installed? scripts/install-test-deps.sh)`))));
    child.once('close', (code, signal) => {
      const stdoutBytes = Buffer.concat(out);
      const result = { command, code, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr: Buffer.concat(err).toString('utf8') };
      const failed = ended !== undefined || (opts.expect === 'failure' ? code === 0 : code !== 0);
      finish(() => (failed ? reject(new Error(describeRun(result, ended ?? (code === 0 ? 'succeeded, but a failure was expected' : `exited with ${code ?? signal}`)))) : resolve(result)));
    });
  });
}

const describeRun = (r: ToolResult, what: string) => `${r.command}\n${what}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/**
 * c/image keeps a blob-info-cache for root at this fixed path, with no flag or variable to move
 * it; from it skopeo and podman learn where a blob was seen before and try cross-repository mounts
 * to registries of earlier runs. Every c/image command therefore runs in a private mount namespace
 * with a per-test empty directory bound over it: the tests see no history and leave none.
 */
const BLOB_INFO_CACHE = '/var/lib/containers/cache';
const HIDE_CACHE = `mkdir -p ${BLOB_INFO_CACHE} && mount --bind "$0" ${BLOB_INFO_CACHE} && exec "$@"`;

export interface OciTools {
  /** The temp dir holding the whole environment; removed by `cleanup`. */
  dir: string;
  /** An empty directory inside `dir` for the test's own files (layouts, artifacts, pulls). */
  work: string;
  /** The environment every tool gets (complete: nothing from this process is passed on). */
  env: Record<string, string>;
  /** Where podman login writes and skopeo/podman read credentials (`REGISTRY_AUTH_FILE`). */
  authFile: string;
  /** `skopeo --policy <accept anything> --registries.d <private lookaside> --tmpdir <tmp> ARGS`, cache hidden. */
  skopeo(args: string[], opts?: RunOptions): Promise<ToolResult>;
  /** `podman --root … --runroot … --storage-driver vfs … ARGS` as root, all state in `dir`, cache hidden. */
  podman(args: string[], opts?: RunOptions): Promise<ToolResult>;
  /** `oras ARGS`; credentials from `oras login` land in `$DOCKER_CONFIG/config.json`. */
  oras(args: string[], opts?: RunOptions): Promise<ToolResult>;
  /** Kills any tool still running, then removes `dir`. Idempotent. */
  cleanup(): Promise<void>;
}

export interface OciToolsOptions {
  /** Where the temp dir is created (default: the OS temp dir). */
  parent?: string;
  /** Default timeout of every command of this environment (default 120 s). */
  timeoutMs?: number;
}

/**
 * A fresh, isolated client environment: own HOME and XDG dirs, no credentials, no search
 * registries, a policy that accepts anything, podman storage (vfs) under the temp dir. Needs root
 * (podman's rootful storage, and `unshare --mount` to hide the blob-info-cache).
 *
 * registries.conf, registries.d and policy.json sit where c/image looks first, `$HOME/.config/containers/`
 * (XDG_CONFIG_HOME is that dir too): a per-user registries.conf there makes c/image skip
 * /etc/containers/registries.conf *and* its registries.conf.d drop-ins. CONTAINERS_REGISTRIES_CONF
 * is deliberately not set: skopeo 1.9 ignores it, and podman 4.3, given it, still merges the
 * system drop-in dir (strace shows /etc/containers/registries.conf.d/shortnames.conf opened).
 */
export async function createOciTools(opts: OciToolsOptions = {}): Promise<OciTools> {
  // Lowercase on purpose: podman names an image pulled from `oci:DIR` after DIR, and image names are
  // lowercase. Short on purpose: podman refuses a runroot path of more than 50 characters.
  const dir = join(opts.parent ?? tmpdir(), `imgsrv-oci-${randomBytes(6).toString('hex')}`);
  await mkdir(dir);
  const p = (...parts: string[]) => join(dir, ...parts);
  const userConfig = p('home', '.config');
  for (const sub of ['home/.config/containers/registries.d', 'data', 'cache', 'docker', 'tmp', 'sigstore', 'blob-info-cache', 'work', 'podman/root', 'podman/run', 'podman/tmp', 'podman/networks']) {
    await mkdir(p(sub), { recursive: true });
  }
  await mkdir(p('run'), { mode: 0o700 });
  const policy = join(userConfig, 'containers', 'policy.json');
  await writeFile(join(userConfig, 'containers', 'registries.conf'), 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  // Signature lookaside: without it, root's c/image reads /var/lib/containers/sigstore.
  const registriesD = join(userConfig, 'containers', 'registries.d');
  await writeFile(join(registriesD, 'default.yaml'), `default-docker:\n  lookaside: file://${p('sigstore')}\n`);
  // podman pull/push refuse a REGISTRY_AUTH_FILE that does not exist; an empty one holds no credentials.
  await writeFile(p('auth.json'), JSON.stringify({ auths: {} }));
  await writeFile(p('storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${p('podman/root')}"\nrunroot = "${p('podman/run')}"\n`);
  // File locks under tmp_dir instead of the shared /dev/shm/libpod_lock segment of every rootful podman.
  await writeFile(
    p('containers.conf'),
    `[engine]\nlock_type = "file"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${p('podman/events.log')}"\ntmp_dir = "${p('podman/tmp')}"\n` +
      `[network]\nnetwork_config_dir = "${p('podman/networks')}"\n`,
  );
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: p('home'),
    XDG_RUNTIME_DIR: p('run'),
    XDG_CONFIG_HOME: userConfig,
    XDG_DATA_HOME: p('data'),
    XDG_CACHE_HOME: p('cache'),
    DOCKER_CONFIG: p('docker'),
    REGISTRY_AUTH_FILE: p('auth.json'),
    CONTAINERS_STORAGE_CONF: p('storage.conf'),
    CONTAINERS_CONF: p('containers.conf'),
    TMPDIR: p('tmp'),
  };
  const aborter = new AbortController();
  const run = (command: string, args: string[], o: RunOptions = {}) =>
    runProcess({ timeoutMs: opts.timeoutMs, ...o, command, args, env, signal: aborter.signal, cwd: o.cwd ?? p('work') });
  const hidingCache = (tool: string, args: string[], o?: RunOptions) =>
    run('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', HIDE_CACHE, p('blob-info-cache'), tool, ...args], o);
  const podmanFlags = ['--root', p('podman/root'), '--runroot', p('podman/run'), '--tmpdir', p('podman/tmp'), '--storage-driver', 'vfs'];
  podmanFlags.push('--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--network-config-dir', p('podman/networks'));
  return {
    dir,
    work: p('work'),
    env,
    authFile: env.REGISTRY_AUTH_FILE!,
    skopeo: (args, o) => hidingCache('skopeo', ['--policy', policy, '--registries.d', registriesD, '--tmpdir', p('tmp'), ...args], o),
    podman: (args, o) => hidingCache('podman', [...podmanFlags, ...args], o),
    oras: (args, o) => run('oras', args, o),
    async cleanup() {
      aborter.abort();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A port nobody listened on a moment ago (the kernel's choice), for a server that cannot take port 0. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ReferenceRegistry {
  /** `127.0.0.1:PORT`, plain HTTP. */
  host: string;
  username: string;
  password: string;
  /** SIGTERM (SIGKILL after 10 s), then its config and storage are removed. Idempotent. */
  stop(): Promise<void>;
}

export interface ReferenceRegistryOptions {
  username?: string;
  password?: string;
  parent?: string;
  /** How long to wait for `GET /v2/` to answer 401 (default 20 s). */
  readyTimeoutMs?: number;
}

/**
 * Debian's docker-registry (distribution 2.8) on a free port with htpasswd auth, filesystem storage
 * in a temp dir and deletes enabled: the reference the client tests are shown to pass against.
 * Ready once `GET /v2/` answers 401, i.e. the listener is up and auth is configured.
 */
export async function startReferenceRegistry(opts: ReferenceRegistryOptions = {}): Promise<ReferenceRegistry> {
  const { username = 'ci', password = randomBytes(18).toString('base64url'), readyTimeoutMs = 20_000 } = opts;
  const dir = await mkdtemp(join(opts.parent ?? tmpdir(), 'imgsrv-docker-registry-'));
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir };
  const logFile = join(dir, 'registry.log');
  const readLog = () => readFile(logFile, 'utf8').catch(() => '');
  let registry: Daemon | undefined;
  try {
    // distribution's htpasswd auth accepts bcrypt entries only.
    const { stdout } = await runProcess({ command: 'htpasswd', args: ['-Bbn', username, password], env, timeoutMs: 30_000 });
    await writeFile(join(dir, 'htpasswd'), stdout);
    const host = `127.0.0.1:${await freePort()}`;
    // YAML is a superset of JSON: the config is written as JSON.
    const config = {
      version: '0.1',
      log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
      storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } }, redirect: { disable: true } },
      http: { addr: host, secret: 'not-a-secret-test-only', headers: { 'X-Content-Type-Options': ['nosniff'] } },
      auth: { htpasswd: { realm: 'imgsrv-test', path: join(dir, 'htpasswd') } },
    };
    await writeFile(join(dir, 'config.yml'), JSON.stringify(config, null, 2));
    registry = await startDaemon({ command: 'docker-registry', args: ['serve', join(dir, 'config.yml')], env, logFile });
    await waitForChallenge({ url: `http://${host}/v2/`, daemon: registry, timeoutMs: readyTimeoutMs });
    const started = registry;
    let stopped: Promise<void> | undefined;
    const stop = async () => {
      await started.stop();
      await rm(dir, { recursive: true, force: true });
    };
    return { host, username, password, stop: () => (stopped ??= stop()) };
  } catch (e) {
    const log = await readLog();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}\n--- docker-registry log\n${log}`);
  }
}

interface Daemon {
  /** Set once the process has exited. */
  exitCode(): number | string | null;
  /** SIGTERM, SIGKILL after 10 s; resolves when it has exited. */
  stop(): Promise<void>;
}

/**
 * A long-running child whose output goes to `logFile`, not a pipe: a pipe nobody drains would
 * stall it. It is SIGKILLed if this process exits first.
 */
async function startDaemon(opts: { command: string; args: string[]; env: Record<string, string>; logFile: string }): Promise<Daemon> {
  const log = await open(opts.logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, { env: opts.env, stdio: ['ignore', log.fd, log.fd] });
  } finally {
    await log.close();
  }
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.once('error', () => {}); // not installed: 'close' follows, and exitCode() reports it
  void exited.then(() => process.off('exit', reap));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
  return {
    exitCode: () => (hasExited() ? (child.exitCode ?? child.signalCode ?? 'not started') : null),
    async stop() {
      if (!hasExited()) child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        await exited;
      } finally {
        clearTimeout(force);
      }
    },
  };
}

/** Polls until `url` answers 401 with a challenge; fails at once if the daemon exits first. */
async function waitForChallenge(opts: { url: string; daemon: Daemon; timeoutMs: number }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const code = opts.daemon.exitCode();
    if (code !== null) throw new Error(`the registry exited (${code}) before ${opts.url} answered`);
    try {
      const res = await fetch(opts.url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 401 && res.headers.get('www-authenticate')) return;
      last = `status ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await delay(50);
  }
  throw new Error(`${opts.url} did not answer 401 within ${opts.timeoutMs} ms (last: ${last})`);
}
