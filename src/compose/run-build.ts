/**
 * # Compose build pipeline
 *
 * Builds Debian images from a validated `BuildRequest` (build-request.ts). Knows nothing of
 * HTTP, the database or imgsrv's catalog: the compose job calls `runBuild`, then uploads the
 * files it returns. Needs root and the host packages in host-tools.ts.
 *
 * Stages (each a function of its own module, taking an options object):
 *  1. rootfs         rootfs.ts          mmdebstrap minbase + packages → cached .tar.zst, keyed by
 *                                       (recipe, distribution, packages, apt sources)
 *  2. config         image-config.ts    extract, then DHCP networking, users/SSH keys/sudo, locked
 *                                       root, resolved stub; no chroot
 *  3. container      container-image.ts mksquashfs of that tree (+ incus.tar.xz)   [container]
 *  4. vm-layer       vm-layer.ts        second mmdebstrap pass in place: kernel, shim + signed
 *                                       GRUB, fstab, repart growth, Incus agent loader, boot check
 *  5. disk           disk-image.ts      GPT + ESP + ext4 in a sparse file, no loop devices →
 *                                       qcow2 (zstd)                               [guest-image]
 *  6. metadata       incus-metadata.ts  incus.tar.xz per variant
 *  7. boot-test      boot-test.ts       QEMU/OVMF with Secure Boot on, marker on the serial port
 *
 * Guarantees: every process is spawned through run-command.ts (AbortSignal, time limit, output
 * to `log` line by line); the per-build workspace under `workDir` is removed on success, failure
 * and cancel; outputs of a failed build are removed except the serial log of a failed boot.
 * After a SIGKILL of the worker, `sweepWorkspaces` (workspace.ts) cleans up on restart.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { probeAccel } from './accel-probe.ts';
import type { Accel } from './accel-probe.ts';
import { runBootTest } from './boot-test.ts';
import type { BootTestResult } from './boot-test.ts';
import type { BuildRequest } from './build-request.ts';
import { buildContainerImage } from './container-image.ts';
import { buildDiskImage } from './disk-image.ts';
import { ComposeError, toComposeError } from './errors.ts';
import { kernelCmdline } from './guest-files.ts';
import { checkHostTools } from './host-tools.ts';
import { applyImageConfig } from './image-config.ts';
import { writeIncusMetadata } from './incus-metadata.ts';
import type { IncusImageKind } from './incus-metadata.ts';
import { listPackages } from './package-list.ts';
import type { InstalledPackage } from './package-list.ts';
import { buildRootfs, extractRootfs, pruneRootfsCache } from './rootfs.ts';
import { elapsed } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';
import { addVmLayer } from './vm-layer.ts';
import { createWorkspace } from './workspace.ts';

export interface RunBuildOptions {
  request: BuildRequest;
  /** Receives the output files (created if missing); the caller owns and removes them. */
  outputDir: string;
  /** Parent of the per-build workspace (needs ~2 GB free; same file system as outputDir is not required). */
  workDir: string;
  cacheDir: string;
  log: (line: string) => void;
  signal: AbortSignal;
  /** Default 'auto': probe KVM with a tiny guest, fall back to TCG. */
  accel?: Accel | 'auto';
  /** Default true. The boot test needs the guest image; it is skipped for container-only builds. */
  bootTest?: boolean;
  bootTimeoutMs?: number;
  /** Clock for creation_date and the serial. */
  now?: () => Date;
  cacheMaxAgeMs?: number;
  /** Rootfs tarballs kept in `cacheDir` (newest first) after a cache miss; default 8 (~60 MB each). */
  cacheKeep?: number;
  /** Test only: the image's kernel command line names a root that never appears, so the boot fails. */
  testBreakKernelCmdline?: boolean;
}

export interface BuiltFile {
  path: string;
  size: number;
}

export interface BuildResult {
  files: {
    disk?: BuiltFile & { virtualSize: number };
    vmMetadata?: BuiltFile;
    squashfs?: BuiltFile;
    containerMetadata?: BuiltFile;
    serialLog?: string;
  };
  packages: { vm?: InstalledPackage[]; container?: InstalledPackage[] };
  /** Milliseconds per stage, and `total`. */
  timings: Record<string, number>;
  rootfsCached: boolean;
  kernel?: string;
  bootTest?: BootTestResult;
  serial: string;
}

export async function runBuild(opts: RunBuildOptions): Promise<BuildResult> {
  const t0 = performance.now();
  const { request, log, signal } = opts;
  const missing = await checkHostTools();
  if (missing.length > 0) throw new ComposeError('host_tools_missing', 'host', `host is missing: ${missing.join(', ')}`);
  signal.throwIfAborted();

  const now = (opts.now ?? (() => new Date()))();
  const serial = now.toISOString().replace(/^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d).*$/, '$1$2$3_$4$5');
  const timings: Record<string, number> = {};
  const produced: string[] = [];
  /** Work started alongside a stage; settled before the workspace goes. */
  const background: Promise<unknown>[] = [];
  const result: BuildResult = { files: {}, packages: {}, timings, rootfsCached: false, serial };
  const wantVm = request.imageTypes.includes('guest-image');
  const wantContainer = request.imageTypes.includes('container');

  await mkdir(opts.outputDir, { recursive: true });
  await mkdir(opts.workDir, { recursive: true });
  const workspace = await createWorkspace({ parentDir: opts.workDir });
  const ctx: StageContext = { log, signal, workspace };
  const stage = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    signal.throwIfAborted();
    log(`== ${name}`);
    const s = performance.now();
    try {
      return await fn();
    } finally {
      const ms = elapsed(s);
      timings[name] = ms;
      log(`== ${name} done in ${(ms / 1000).toFixed(1)} s`);
    }
  };
  const out = (name: string): string => {
    const p = join(opts.outputDir, name);
    produced.push(p);
    return p;
  };
  const metadata = (kind: IncusImageKind) => ({
    kind, architecture: request.architecture, creationDate: Math.floor(now.getTime() / 1000),
    os: 'Debian', release: request.distribution.codename, variant: kind === 'vm' ? 'default' : 'container',
    description: `Debian ${request.distribution.version} (${request.distribution.codename}) ${request.architecture} ${kind === 'vm' ? 'VM' : 'container'} (${serial})`,
    serial,
  });

  try {
    const rootfs = await stage('rootfs', () => buildRootfs({ ...ctx, request, cacheDir: opts.cacheDir, maxAgeMs: opts.cacheMaxAgeMs }));
    result.rootfsCached = rootfs.cached;
    if (!rootfs.cached) await pruneRootfsCache({ cacheDir: opts.cacheDir, keep: opts.cacheKeep ?? 8, maxAgeMs: opts.cacheMaxAgeMs, log });
    const rootDir = join(workspace.dir, 'rootfs');
    await stage('extract', () => extractRootfs(ctx, { tarball: rootfs.tarball, dir: rootDir }));
    await stage('config', () => applyImageConfig({ ...ctx, request, rootDir }));

    if (wantContainer) {
      result.packages.container = await listPackages(ctx, { rootDir });
      result.files.squashfs = await stage('container', () => buildContainerImage({ ...ctx, rootDir, output: out('rootfs.squashfs') }));
      result.files.containerMetadata = await stage('container-metadata', () =>
        writeIncusMetadata({ ...ctx, metadata: metadata('container'), output: out('incus-container.tar.xz') }));
    }

    if (wantVm) {
      const rootUuid = randomUUID();
      // The KVM probe (up to 4 s when KVM is broken) runs while the VM layer installs.
      const accelChoice = opts.bootTest === false ? null : opts.accel === undefined || opts.accel === 'auto' ? probe(ctx) : Promise.resolve(opts.accel);
      if (accelChoice) background.push(accelChoice.catch(() => undefined));
      const vm = await stage('vm-layer', () => addVmLayer({ ...ctx, request, rootDir, rootUuid }));
      result.kernel = vm.kernel;
      result.packages.vm = await listPackages(ctx, { rootDir });
      const cmdline = kernelCmdline({ rootUuid, broken: opts.testBreakKernelCmdline === true });
      const disk = await stage('disk', () => buildDiskImage({
        ...ctx, rootDir, rootUuid, efi: vm.efi, cmdline, rootMinSize: request.rootMinSize, output: out('disk.qcow2'),
      }));
      result.files.disk = { path: disk.path, size: disk.size, virtualSize: disk.virtualSize };
      // The tree is not needed any more: free its ~500 MB before QEMU runs.
      await rm(rootDir, { recursive: true, force: true });
      result.files.vmMetadata = await stage('vm-metadata', () => writeIncusMetadata({ ...ctx, metadata: metadata('vm'), output: out('incus-vm.tar.xz') }));

      if (opts.bootTest !== false) {
        const accel = await (accelChoice ?? probe(ctx));
        const serialLog = out('boot-serial.log');
        result.files.serialLog = serialLog;
        const boot = await stage('boot-test', () => runBootTest({
          ...ctx, image: disk.path, virtualSize: disk.virtualSize, serialLog, accel, timeoutMs: opts.bootTimeoutMs,
        }));
        result.bootTest = boot;
        if (!boot.markerSeen)
          throw new ComposeError('boot_test_failed', 'boot-test', `boot-test: ${boot.reason ?? 'no marker'}; the serial console is in the build log ([serial] lines)`, { serialLog });
        log(`[boot-test] marker seen after ${boot.seconds} s (${accel}); guest reports ${JSON.stringify(boot.facts)}`);
      }
    }
    timings.total = elapsed(t0);
    return result;
  } catch (err) {
    const e = toComposeError(err, 'build', 'internal');
    for (const p of produced) if (!(e.code === 'boot_test_failed' && p === e.serialLog)) await rm(p, { force: true });
    log(`== failed: ${e.code}: ${e.message}`);
    throw e;
  } finally {
    await Promise.allSettled(background);
    // A workspace that cannot be removed (a mount below it) must not hide the build's own error.
    await workspace.dispose().catch((err: unknown) => log(`== workspace not removed: ${(err as Error).message}`));
  }
}

async function probe(ctx: StageContext): Promise<Accel> {
  const { accel, reason } = await probeAccel(ctx);
  ctx.log(`[accel] ${accel}: ${reason}`);
  return accel;
}
