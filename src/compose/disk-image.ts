import { randomUUID } from 'node:crypto';
import { lstat, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { diskLayout, fatVolumeId, rootFsSize, sfdiskScript } from './disk-layout.ts';
import type { DiskLayout } from './disk-layout.ts';
import { ComposeError, toComposeError } from './errors.ts';
import { grubConfig } from './guest-files.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';
import type { VmLayerResult } from './vm-layer.ts';

/**
 * Stage 4: the VM tree becomes a UEFI disk, without loop devices, mounts or root-only kernel
 * features: a sparse file, a GPT written by sfdisk, ext4 built from the tree by
 * `mkfs.ext4 -d` at the root partition's byte offset, FAT32 created in place by
 * `mkfs.vfat --offset` and filled with mtools (`-i disk@@OFFSET`), then compressed to qcow2.
 * The ESP holds shim as the removable-media loader EFI/BOOT/BOOTX64.EFI, GRUB next to it
 * (shim loads grubx64.efi from its own directory) and the GRUB menu where Debian's signed
 * GRUB looks for it: EFI/debian/grub.cfg (its built-in prefix).
 */
export interface DiskImageOptions extends StageContext {
  rootDir: string;
  rootUuid: string;
  efi: VmLayerResult['efi'];
  cmdline: string;
  /** Minimum root file system size in bytes (request's filesystem customization). */
  rootMinSize: number;
  output: string;
  /** zstd needs QEMU >= 5.1 to read; zlib for older consumers. */
  compression?: 'zstd' | 'zlib';
  timeoutMs?: number;
}

export interface DiskImageResult {
  path: string;
  size: number;
  virtualSize: number;
  layout: DiskLayout;
}

export async function buildDiskImage(opts: DiskImageOptions): Promise<DiskImageResult> {
  const raw = join(opts.workspace.dir, 'disk.raw');
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  try {
    const contentBytes = await allocatedBytes(opts.rootDir);
    const layout = diskLayout({
      rootBytes: rootFsSize({ contentBytes, minSize: opts.rootMinSize }),
      uuids: { disk: randomUUID(), esp: randomUUID(), root: randomUUID() },
    });
    opts.log(`[disk] tree ${(contentBytes / 1048576).toFixed(0)} MiB, root fs ${layout.root.sizeBytes / 1048576} MiB, disk ${layout.totalBytes / 1048576} MiB`);
    const fh = await open(raw, 'w');
    await fh.truncate(layout.totalBytes);
    await fh.close();

    await exec(opts, 'sfdisk', ['--no-reread', '--no-tell-kernel', '--wipe', 'always', raw], { input: sfdiskScript(layout), timeoutMs });
    // ext4 first: nodiscard keeps mke2fs from punching holes anywhere in the shared file.
    await exec(opts, 'mkfs.ext4', [
      '-F', '-t', 'ext4', '-L', 'root', '-U', opts.rootUuid, '-d', opts.rootDir,
      '-E', `offset=${layout.root.startBytes},nodiscard`, raw, `${layout.root.sizeBytes / 1024}k`,
    ], { timeoutMs });
    await exec(opts, 'mkfs.vfat', [
      '-F', '32', '-s', '1', '-n', 'EFI', '-i', fatVolumeId(layout.esp.uuid),
      '--offset', String(layout.esp.startBytes / 512), raw, String(layout.esp.sizeBytes / 1024),
    ], { timeoutMs });
    const size = (await stat(raw)).size;
    if (size !== layout.totalBytes) throw new ComposeError('disk_image_failed', 'disk', `disk: raw image is ${size} bytes after mkfs, expected ${layout.totalBytes}`);

    const grubCfg = join(opts.workspace.dir, 'grub.cfg');
    await writeFile(grubCfg, grubConfig({ rootUuid: opts.rootUuid, cmdline: opts.cmdline }));
    const img = `${raw}@@${layout.esp.startBytes}`;
    const mtools = { timeoutMs, env: { MTOOLS_SKIP_CHECK: '1' } };
    await exec(opts, 'mmd', ['-i', img, '::/EFI', '::/EFI/BOOT', '::/EFI/debian'], mtools);
    const copies: [string, string][] = [
      [join(opts.rootDir, opts.efi.shim), '::/EFI/BOOT/BOOTX64.EFI'],
      [join(opts.rootDir, opts.efi.grub), '::/EFI/BOOT/grubx64.efi'],
      [join(opts.rootDir, opts.efi.mokManager), '::/EFI/BOOT/mmx64.efi'],
      [grubCfg, '::/EFI/debian/grub.cfg'],
    ];
    for (const [src, dst] of copies) await exec(opts, 'mcopy', ['-i', img, '-o', src, dst], mtools);

    await rm(opts.output, { force: true });
    await exec(opts, 'qemu-img', [
      'convert', '-f', 'raw', '-O', 'qcow2', '-c', '-o', `compression_type=${opts.compression ?? 'zstd'}`, raw, opts.output,
    ], { timeoutMs });
    await rm(raw, { force: true });
    await exec(opts, 'qemu-img', ['check', '-f', 'qcow2', opts.output], { timeoutMs });
    return { path: opts.output, size: (await stat(opts.output)).size, virtualSize: layout.totalBytes, layout };
  } catch (err) {
    await rm(raw, { force: true });
    throw toComposeError(err, 'disk', 'disk_image_failed');
  }
}

/**
 * Allocated bytes of a tree (hard links counted once, symlinks not followed), the measure
 * mkfs.ext4 -d has to fit. Walks the tree in-process: no `du`, no subprocess per directory.
 */
export async function allocatedBytes(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = await lstat(p);
      if (st.nlink > 1 && !st.isDirectory()) {
        const id = `${st.dev}:${st.ino}`;
        if (seen.has(id)) continue;
        seen.add(id);
      }
      total += st.blocks * 512;
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return total;
}
