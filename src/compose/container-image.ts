import { stat } from 'node:fs/promises';
import { toComposeError } from './errors.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * The Incus container image's rootfs: the configured tree without kernel or loader, packed
 * with `mksquashfs` (zstd). mksquashfs reads the directory itself and keeps xattrs, where
 * tar2sqfs (squashfs-tools-ng) refuses the POSIX ACL on /var/log/journal.
 */
export interface ContainerImageOptions extends StageContext {
  rootDir: string;
  output: string;
  /** Compression threads; default 2 (the build machine's cores are shared). */
  processors?: number;
  /**
   * zstd level, default 9. Measured on the 178 MB bookworm tree: level 9 → 61 MB in 2.4 s,
   * mksquashfs's default 15 → 57.6 MB in 23 s, 19 → 57.2 MB in 74 s.
   */
  compressionLevel?: number;
  timeoutMs?: number;
}

export async function buildContainerImage(opts: ContainerImageOptions): Promise<{ path: string; size: number }> {
  try {
    await exec(opts, 'mksquashfs', [
      opts.rootDir, opts.output,
      '-comp', 'zstd', '-Xcompression-level', String(opts.compressionLevel ?? 9), '-noappend', '-no-progress', '-processors', String(opts.processors ?? 2),
      // /dev, /proc, /sys, /run and /tmp contents are the runtime's business (Incus mounts them).
      '-wildcards', '-e', 'dev/*', 'proc/*', 'sys/*', 'run/*', 'tmp/*',
    ], { timeoutMs: opts.timeoutMs ?? 10 * 60_000 });
    return { path: opts.output, size: (await stat(opts.output)).size };
  } catch (err) {
    throw toComposeError(err, 'container-image', 'container_image_failed');
  }
}
