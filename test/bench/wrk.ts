import { execFile as execFileCb } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

export interface WrkResult {
  requests: number;
  requestsPerSecond: number;
  bytesPerSecond: number;
  /** CPU seconds wrk itself used per second of the run: 1.0 is one whole core. */
  cores: number;
  p99Ms: number;
}

/**
 * Load from `wrk` (Debian's package, installed by scripts/install-test-deps.sh): `connections`
 * keep-alive connections on `threads` threads for `seconds`, each request the next of `paths`
 * in turn (with `headers`), or a request `script` (Lua: the body of wrk's `request` function).
 * Every response must be 2xx or 3xx: one that is not fails the bench, as does a socket error.
 * Run under bash's `times`, so what the load generator cost is measured, not assumed.
 */
export async function wrk(
  origin: string,
  opts: { paths?: readonly string[]; headers?: Record<string, string>; script?: string; connections: number; seconds: number; threads?: number; timeoutSeconds?: number },
): Promise<WrkResult> {
  const dir = await mkdtemp(join(tmpdir(), 'imgsrv-wrk-'));
  try {
    const lua = join(dir, 'load.lua');
    const headers = Object.entries(opts.headers ?? {})
      .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
      .join('\n');
    const paths = `{${(opts.paths ?? ['/']).map((p) => JSON.stringify(p)).join(', ')}}`;
    const request = opts.script ?? 'i = i + 1\n  return wrk.format(nil, paths[(i % #paths) + 1])';
    await writeFile(
      lua,
      `${headers}\nlocal paths = ${paths}\nlocal i = 0\nsetup = function(thread) thread:set("id", math.random(1, 1000000)) end\ninit = function() math.randomseed(os.time() + id) end\nrequest = function()\n  ${request}\nend\n`,
    );
    const threads = opts.threads ?? 2;
    const command = `wrk --latency --timeout ${opts.timeoutSeconds ?? 10}s -t${threads} -c${opts.connections} -d${opts.seconds}s -s ${lua} ${origin}; echo; times`;
    const started = performance.now();
    const { stdout } = await execFile('bash', ['-c', command], { maxBuffer: 1 << 20 });
    const elapsed = (performance.now() - started) / 1000;
    const number = (re: RegExp) => {
      const m = re.exec(stdout);
      if (!m) throw new Error(`wrk printed no ${re.source}:\n${stdout}`);
      return Number(m[1]);
    };
    const failed = /Non-2xx or 3xx responses: (\d+)/.exec(stdout) ?? /Socket errors: (.+)/.exec(stdout);
    if (failed) throw new Error(`wrk against ${origin}: ${failed[0]}\n${stdout}`);
    const size = (v: string, unit: string) => Number(v) * ({ B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[unit] ?? NaN);
    const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(stdout);
    const p99 = /99%\s+([\d.]+)(us|ms|s)\b/.exec(stdout);
    // bash's `times`: the shell's own user/sys, then its children's (wrk's) user/sys.
    const children = stdout.trim().split('\n').at(-1)!.split(/\s+/).map((t) => {
      const m = /^(\d+)m([\d.]+)s$/.exec(t);
      return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
    });
    return {
      requests: number(/(\d+) requests in /),
      requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
      bytesPerSecond: transfer ? size(transfer[1]!, transfer[2]!) : 0,
      cores: (children[0]! + children[1]!) / elapsed,
      p99Ms: p99 ? Number(p99[1]) * ({ us: 0.001, ms: 1, s: 1000 }[p99[2]!] ?? NaN) : NaN,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
