import { spawn } from 'node:child_process';
import { basename } from 'node:path';

/**
 * The only way the pipeline starts a process. Guarantees, on every path (success, non-zero
 * exit, timeout, abort): the promise settles only after the process has exited and its
 * output pipes are closed; output is delivered line by line to `log` (carriage-return
 * progress lines of apt/dpkg split too); on timeout or abort the whole process group gets
 * SIGTERM, then SIGKILL after `killGraceMs`, and a last SIGKILL sweeps group members that
 * outlived the leader. Children run in their own process group (`detached`), so a group
 * kill reaches `mmdebstrap`'s apt/dpkg and `qemu` without touching the caller.
 *
 * The environment is fixed (PATH, C.UTF-8 locale, HOME) plus `env`: builds must not
 * depend on whatever the server process was started with.
 */
export interface CommandOptions {
  cmd: string;
  args: readonly string[];
  log: (line: string) => void;
  signal: AbortSignal;
  timeoutMs: number;
  /** Prefix of each logged line; default: the command's basename. */
  tag?: string;
  cwd?: string;
  env?: Readonly<Record<string, string>>;
  /** Written to stdin, which is then closed; stdin is /dev/null otherwise. */
  input?: string;
  /** Return stdout instead of logging it (bounded by `maxCaptureBytes`, default 16 MiB). */
  captureStdout?: boolean;
  maxCaptureBytes?: number;
  /** Called with the pid (= process group id) right after spawn, e.g. to record it for a crash sweep. */
  onSpawn?: (pid: number) => void;
  killGraceMs?: number;
}

export interface CommandResult {
  stdout: string;
}

export type CommandFailure = 'exit' | 'signal' | 'timeout' | 'aborted' | 'spawn';

export class CommandError extends Error {
  readonly reason: CommandFailure;
  readonly exitCode: number | null;
  /** The last lines the process printed (stderr and stdout), for error messages. */
  readonly tail: readonly string[];

  constructor(reason: CommandFailure, message: string, exitCode: number | null, tail: readonly string[], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CommandError';
    this.reason = reason;
    this.exitCode = exitCode;
    this.tail = tail;
  }
}

/** For the log only: the command line as a shell would need it, so it can be re-run by hand. */
function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

const BASE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8', HOME: '/root' };
const TAIL_LINES = 30;
const MAX_LINE = 4000;

export async function runCommand(opts: CommandOptions): Promise<CommandResult> {
  const tag = opts.tag ?? basename(opts.cmd);
  const tail: string[] = [];
  const emit = (line: string): void => {
    const text = line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line;
    tail.push(text);
    if (tail.length > TAIL_LINES) tail.shift();
    opts.log(`[${tag}] ${text}`);
  };
  if (opts.signal.aborted) throw new CommandError('aborted', `${tag}: not started, build cancelled`, null, tail);
  opts.log(`[${tag}] $ ${[opts.cmd, ...opts.args].map(shellQuote).join(' ')}`);

  const child = spawn(opts.cmd, opts.args, {
    cwd: opts.cwd,
    env: { ...BASE_ENV, ...opts.env },
    detached: true,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const pid = child.pid;

  let killedFor: 'timeout' | 'aborted' | null = null;
  let graceTimer: NodeJS.Timeout | undefined;
  const killGroup = (sig: NodeJS.Signals): void => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      // ESRCH: the group is gone already.
    }
  };
  const stop = (why: 'timeout' | 'aborted'): void => {
    if (killedFor !== null) return;
    killedFor = why;
    killGroup('SIGTERM');
    graceTimer = setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs ?? 5000);
  };
  const onAbort = (): void => stop('aborted');
  const timer = setTimeout(() => stop('timeout'), opts.timeoutMs);
  opts.signal.addEventListener('abort', onAbort, { once: true });
  let spawnHookError: unknown;
  try {
    if (pid !== undefined) opts.onSpawn?.(pid);
  } catch (err) {
    // A process nobody can account for must not keep running: stop it, then report.
    spawnHookError = err;
    stop('aborted');
  }

  const captured: Buffer[] = [];
  let capturedBytes = 0;
  const maxCapture = opts.maxCaptureBytes ?? 16 * 1024 * 1024;
  const splitter = (): ((chunk: Buffer | null) => void) => {
    let rest = '';
    return (chunk) => {
      if (chunk === null) {
        if (rest.length > 0) emit(rest);
        rest = '';
        return;
      }
      const parts = (rest + chunk.toString('utf8')).split(/\r\n|\n|\r/);
      rest = parts.pop() ?? '';
      for (const p of parts) if (p.trim().length > 0) emit(p);
    };
  };
  const { stdout, stderr } = child as { stdout: NodeJS.ReadableStream; stderr: NodeJS.ReadableStream };
  const errLines = splitter();
  stderr.on('data', (c: Buffer) => errLines(c));
  stderr.on('end', () => errLines(null));
  if (opts.captureStdout) {
    stdout.on('data', (c: Buffer) => {
      capturedBytes += c.length;
      if (capturedBytes <= maxCapture) captured.push(c);
    });
  } else {
    const outLines = splitter();
    stdout.on('data', (c: Buffer) => outLines(c));
    stdout.on('end', () => outLines(null));
  }
  if (opts.input !== undefined && child.stdin) {
    child.stdin.on('error', () => undefined); // EPIPE when the tool exits early; its exit status tells
    child.stdin.end(opts.input);
  }

  try {
    const { code, sig, spawnError } = await new Promise<{ code: number | null; sig: NodeJS.Signals | null; spawnError?: Error }>((resolve) => {
      child.once('error', (err) => {
        // Spawn failures (ENOENT) emit 'error' and no 'close' follows when no pid was assigned.
        if (pid === undefined) resolve({ code: null, sig: null, spawnError: err });
      });
      child.once('close', (c, s) => resolve({ code: c, sig: s }));
    });
    if (spawnError) throw new CommandError('spawn', `${tag}: cannot start ${opts.cmd}: ${spawnError.message}`, null, tail, { cause: spawnError });
    if (spawnHookError !== undefined) throw new CommandError('spawn', `${tag}: onSpawn failed: ${(spawnHookError as Error).message}`, code, tail, { cause: spawnHookError });
    if (killedFor === 'aborted') throw new CommandError('aborted', `${tag}: killed, build cancelled`, code, tail);
    if (killedFor === 'timeout') throw new CommandError('timeout', `${tag}: killed after ${Math.round(opts.timeoutMs / 1000)} s time limit`, code, tail);
    if (sig !== null) throw new CommandError('signal', `${tag}: terminated by ${sig}`, null, tail);
    if (code !== 0) throw new CommandError('exit', `${tag}: exit status ${code}`, code, tail);
    return { stdout: Buffer.concat(captured).toString('utf8') };
  } catch (err) {
    // Group members that outlived the leader (a daemonised helper) go too.
    killGroup('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
    clearTimeout(graceTimer);
    opts.signal.removeEventListener('abort', onAbort);
  }
}
