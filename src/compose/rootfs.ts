import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { aptSources } from './apt-sources.ts';
import { rootfsPackages } from './build-request.ts';
import type { BuildRequest } from './build-request.ts';
import { ComposeError, toComposeError } from './errors.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * Stage 1: the base root filesystem, `mmdebstrap --variant=minbase` with merged /usr and the
 * full package set, as a zstd tarball in a cache directory keyed by everything that decides
 * its content. A rebuild with the same inputs skips this stage (the slowest before the boot
 * test); a new recipe version or a different package set, mirror or repository gets a new key.
 *
 * Cache layout (this file owns it):
 *   CACHE/rootfs-<sha256 of key input>.tar.zst   complete tarballs, mtime = build time
 *   CACHE/.tmp-<key>-<random>.tar.zst            being written; renamed when complete
 *
 * mmdebstrap runs in unshare mode: as root it unshares only the mount/pid namespaces, so
 * ownership is real and its /proc, /sys and /dev mounts vanish with the process, even after
 * SIGKILL. dpkg runs with force-unsafe-io during the build only (the setting is removed again):
 * fsync per file buys nothing for a tree that is packed up right after.
 */
export interface RootfsOptions extends StageContext {
  request: BuildRequest;
  cacheDir: string;
  /** A cached tarball older than this is rebuilt (security updates). Default 7 days. */
  maxAgeMs?: number;
  timeoutMs?: number;
}

export interface RootfsResult {
  tarball: string;
  cached: boolean;
  key: string;
}

/** Bump when the recipe below changes in a way that changes the tarball. */
const RECIPE = 'rootfs-v1';
const MERGED_USR_HOOKS = '/usr/share/mmdebstrap/hooks/merged-usr';
const UNSAFE_IO = '/etc/dpkg/dpkg.cfg.d/00imgsrv-unsafe-io';

export function rootfsCacheKey(req: BuildRequest): string {
  const input = JSON.stringify({ recipe: RECIPE, distribution: req.distribution.id, arch: req.architecture, packages: rootfsPackages(req), sources: aptSources(req) });
  return createHash('sha256').update(input).digest('hex');
}

export async function buildRootfs(opts: RootfsOptions): Promise<RootfsResult> {
  const key = rootfsCacheKey(opts.request);
  const tarball = join(opts.cacheDir, `rootfs-${key}.tar.zst`);
  const maxAge = opts.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  try {
    await mkdir(opts.cacheDir, { recursive: true });
    const st = await stat(tarball).catch(() => null);
    if (st && Date.now() - st.mtimeMs < maxAge) {
      opts.log(`[rootfs] cache hit ${tarball}`);
      return { tarball, cached: true, key };
    }
    const sources = join(opts.workspace.dir, 'sources.sources');
    await writeFile(sources, aptSources(opts.request));
    const tmp = join(opts.cacheDir, `.tmp-${key}-${randomBytes(4).toString('hex')}.tar.zst`);
    try {
      await exec(opts, 'mmdebstrap', [
        '--mode=unshare',
        '--variant=minbase',
        `--architectures=amd64`,
        `--include=${rootfsPackages(opts.request).join(',')}`,
        `--hook-dir=${MERGED_USR_HOOKS}`,
        '--aptopt=Acquire::Retries "3"',
        `--setup-hook=mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io > "$1${UNSAFE_IO}"`,
        `--customize-hook=rm -f "$1${UNSAFE_IO}"`,
        opts.request.distribution.codename,
        tmp,
        sources,
      ], { timeoutMs: opts.timeoutMs ?? 20 * 60_000, env: { TMPDIR: opts.workspace.dir } });
      await rename(tmp, tarball);
    } finally {
      await rm(tmp, { force: true });
    }
    return { tarball, cached: false, key };
  } catch (err) {
    const e = toComposeError(err, 'rootfs', 'rootfs_failed');
    if (e.code === 'rootfs_failed' && /Unable to locate package|has no installation candidate|Couldn't find any package|unmet dependencies/i.test(e.message))
      throw new ComposeError('package_unavailable', 'rootfs', e.message, { cause: err });
    throw e;
  }
}

/**
 * Bounds the cache: keeps the `keep` newest tarballs younger than `maxAgeMs` and within
 * `maxBytes` in all (the newest always stays: the build that just made it uses it), removes
 * the rest and temp files older than an hour (left by a killed build). Safe while builds run:
 * a build holds no lock on a tarball it has started extracting (unlinked files stay readable).
 */
export async function pruneRootfsCache(opts: { cacheDir: string; keep: number; maxAgeMs?: number; maxBytes?: number; log: (line: string) => void }): Promise<string[]> {
  const names = await readdir(opts.cacheDir).catch(() => [] as string[]);
  const now = Date.now();
  const entries: { path: string; mtime: number; size: number; tmp: boolean }[] = [];
  for (const n of names) {
    if (!/^rootfs-[0-9a-f]{64}\.tar\.zst$/.test(n) && !/^\.tmp-[0-9a-f]{64}-[0-9a-f]{8}\.tar\.zst$/.test(n)) continue;
    const st = await stat(join(opts.cacheDir, n)).catch(() => null);
    if (st) entries.push({ path: join(opts.cacheDir, n), mtime: st.mtimeMs, size: st.size, tmp: n.startsWith('.tmp-') });
  }
  const maxAge = opts.maxAgeMs ?? 7 * 24 * 3600 * 1000;
  const maxBytes = opts.maxBytes ?? 4 * 1024 ** 3;
  const complete = entries.filter((e) => !e.tmp).sort((a, b) => b.mtime - a.mtime);
  let total = 0;
  const overBudget = complete.map((e, i) => (total += e.size) > maxBytes && i > 0);
  const doomed = [
    ...complete.filter((e, i) => i >= opts.keep || now - e.mtime >= maxAge || overBudget[i]),
    ...entries.filter((e) => e.tmp && now - e.mtime > 3600_000),
  ];
  for (const e of doomed) {
    await rm(e.path, { force: true });
    opts.log(`[rootfs] pruned ${e.path}`);
  }
  return doomed.map((e) => e.path);
}

/**
 * Unpacks a rootfs tarball into `dir` (created) as root with owners, modes, xattrs (file
 * capabilities, the journal's ACL) and device nodes intact: the input of both image stages.
 */
export async function extractRootfs(ctx: StageContext, opts: { tarball: string; dir: string; timeoutMs?: number }): Promise<void> {
  try {
    await mkdir(opts.dir, { recursive: true, mode: 0o755 });
    await exec(ctx, 'tar', [
      '--extract', '--zstd', '--file', opts.tarball, '--directory', opts.dir,
      '--preserve-permissions', '--same-owner', '--numeric-owner', '--xattrs', "--xattrs-include=*", '--acls',
    ], { timeoutMs: opts.timeoutMs ?? 10 * 60_000 });
  } catch (err) {
    throw toComposeError(err, 'rootfs', 'rootfs_failed');
  }
}
