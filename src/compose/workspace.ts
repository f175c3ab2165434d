import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * One build's scratch directory, and the records that let a restarted worker clean up after
 * a SIGKILL: the directory holds `owner.json` (pid and start time of the building process)
 * and `processes` (every process group the build spawned, with its start time).
 *
 * Layout: PARENT/imgsrv-compose-XXXXXX/{owner.json,processes,...stage dirs}
 *
 * `dispose` never deletes through a mount point: the pipeline runs mmdebstrap in unshare mode,
 * whose mounts live in a private namespace, so a mount under the workspace means something
 * outside the pipeline is wrong, and the directory is left alone with an error.
 */
export interface Workspace {
  readonly dir: string;
  /** Records a spawned process group; pass as `onSpawn` to runCommand. */
  track(pid: number): void;
  /** Kills tracked groups that are still alive and removes the directory. Idempotent. */
  dispose(): Promise<void>;
}

const PREFIX = 'imgsrv-compose-';

export async function createWorkspace(opts: { parentDir: string }): Promise<Workspace> {
  const dir = await mkdtemp(join(opts.parentDir, PREFIX));
  await writeFile(join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
  const groups: { pid: number; start: number }[] = [];
  let disposed = false;
  return {
    dir,
    track(pid) {
      const start = startTime(pid) ?? 0;
      groups.push({ pid, start });
      // Throws when the workspace is gone; runCommand then kills the process it just started.
      appendFileSync(join(dir, 'processes'), `${pid} ${start}\n`);
    },
    async dispose() {
      if (disposed) return;
      killGroups(groups);
      const mounts = mountsUnder(dir);
      if (mounts.length > 0) throw new Error(`workspace ${dir} not removed: mounts below it: ${mounts.join(', ')}`);
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      disposed = true;
    },
  };
}

/**
 * Removes workspaces under `parentDir` whose owner process is gone (a worker killed with
 * SIGKILL), killing the process groups they recorded first. Workspaces of live processes,
 * this one's included, are kept. Run it when a worker starts, before it claims jobs.
 */
export async function sweepWorkspaces(opts: { parentDir: string; log: (line: string) => void }): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(opts.parentDir);
  } catch {
    return removed;
  }
  for (const name of names.filter((n) => n.startsWith(PREFIX))) {
    const dir = join(opts.parentDir, name);
    let owner: { pid?: number; start?: number } = {};
    try {
      owner = JSON.parse(await readFile(join(dir, 'owner.json'), 'utf8')) as typeof owner;
    } catch {
      // No owner file: created and crashed before writing it; treat as orphaned.
    }
    if (owner.pid !== undefined && startTime(owner.pid) === owner.start && owner.start !== undefined) continue;
    const recorded = await readFile(join(dir, 'processes'), 'utf8').catch(() => '');
    const groups = recorded.split('\n').filter(Boolean).map((l) => {
      const [pid, start] = l.split(' ').map(Number);
      return { pid: pid ?? 0, start: start ?? 0 };
    });
    const killed = killGroups(groups);
    const mounts = mountsUnder(dir);
    if (mounts.length > 0) {
      opts.log(`[sweep] keeping ${dir}: mounts below it: ${mounts.join(', ')}`);
      continue;
    }
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    opts.log(`[sweep] removed orphaned ${dir} (killed ${killed} processes)`);
    removed.push(dir);
  }
  return removed;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined. */
function startTime(pid: number): number | undefined {
  return procStat(pid)?.start;
}

function procStat(pid: number): { pgid: number; start: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pgid: Number(fields[2]), start: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/**
 * SIGKILLs every process that belongs to one of the recorded groups and started no earlier
 * than the group's leader (so a recycled pid of an unrelated process is spared). Scans /proc
 * rather than kill(-pgid) because the leader may be gone while members still run.
 */
function killGroups(groups: readonly { pid: number; start: number }[]): number {
  if (groups.length === 0) return 0;
  const byPgid = new Map(groups.map((g) => [g.pid, g.start]));
  let killed = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(Number(e));
    if (!st) continue;
    const leaderStart = byPgid.get(st.pgid);
    if (leaderStart === undefined || st.start < leaderStart) continue;
    try {
      process.kill(Number(e), 'SIGKILL');
      killed++;
    } catch {
      // exited meanwhile
    }
  }
  return killed;
}

/** Mount points at or below `dir` in this process's mount namespace (octal escapes decoded). */
function mountsUnder(dir: string): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const decode = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info
    .split('\n')
    .map((l) => decode(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}
