import { readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { aptSources } from './apt-sources.ts';
import type { BuildRequest } from './build-request.ts';
import { ComposeError, toComposeError } from './errors.ts';
import { VM_UNITS, vmFiles } from './guest-files.ts';
import { enableUnits, finalizeTree, writeGuestFiles } from './image-config.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * Stage 3: turns the configured tree into a bootable VM tree, in place: kernel
 * (linux-image-cloud-amd64), the Secure Boot chain (Microsoft-signed shim, Debian-signed
 * GRUB), fstab, root growth, the Incus agent loader and the boot-check unit.
 *
 * A second mmdebstrap pass (`--variant=custom` into the existing directory) rather than a
 * hand-made chroot: mmdebstrap sets up apt, /proc, /sys and /dev inside its own mount
 * namespace and removes them again, also when killed. /dev is emptied first because the pass
 * creates its device nodes anew. The kernel is installed with apt-get in a customize hook,
 * after initramfs-tools and zstd in a hook of their own: in one transaction (or via
 * --include) the initramfs is generated twice, once by the kernel's postinst and again by
 * the pending initramfs-tools trigger (11 s each here).
 */
export interface VmLayerOptions extends StageContext {
  request: BuildRequest;
  rootDir: string;
  /** UUID the disk stage will give the root file system (fstab and GRUB refer to it). */
  rootUuid: string;
  timeoutMs?: number;
}

export interface VmLayerResult {
  /** Kernel file name under /boot, e.g. vmlinuz-6.1.0-50-cloud-amd64. */
  kernel: string;
  /** Paths inside the tree of the EFI binaries the disk stage copies to the ESP. */
  efi: { shim: string; grub: string; mokManager: string };
}

const KERNEL_PACKAGES = ['linux-image-cloud-amd64', 'shim-signed', 'grub-efi-amd64-signed'];
const UNSAFE_IO = '/etc/dpkg/dpkg.cfg.d/00imgsrv-unsafe-io';
const APT_INSTALL = 'chroot "$1" apt-get install --yes --no-install-recommends -o Dpkg::Options::=--force-confold';

export async function addVmLayer(opts: VmLayerOptions): Promise<VmLayerResult> {
  const { rootDir } = opts;
  try {
    await writeGuestFiles(rootDir, vmFiles({ rootUuid: opts.rootUuid }));
    for (const n of await readdir(join(rootDir, 'dev'))) await rm(join(rootDir, 'dev', n), { recursive: true, force: true });
    // mmdebstrap copies the host's resolv.conf in for the pass; finalizeTree restores the image's.
    await rm(join(rootDir, 'etc/resolv.conf'), { force: true });
    const sources = join(opts.workspace.dir, 'sources.sources');
    await writeFile(sources, aptSources(opts.request));
    const packages = [...KERNEL_PACKAGES, ...opts.request.distribution.vmPackages];
    await exec(opts, 'mmdebstrap', [
      '--mode=unshare',
      '--variant=custom',
      '--skip=check/empty',
      '--architectures=amd64',
      '--aptopt=Acquire::Retries "3"',
      `--setup-hook=mkdir -p "$1/etc/dpkg/dpkg.cfg.d" && echo force-unsafe-io > "$1${UNSAFE_IO}"`,
      `--customize-hook=${APT_INSTALL} initramfs-tools zstd`,
      `--customize-hook=${APT_INSTALL} ${packages.join(' ')}`,
      `--customize-hook=rm -f "$1${UNSAFE_IO}"`,
      opts.request.distribution.codename,
      rootDir,
      sources,
    ], { timeoutMs: opts.timeoutMs ?? 20 * 60_000, env: { TMPDIR: opts.workspace.dir } });
    await finalizeTree(rootDir);
    await enableUnits(opts, VM_UNITS);
    return await inspectBootFiles(rootDir);
  } catch (err) {
    throw toComposeError(err, 'vm-layer', 'vm_layer_failed');
  }
}

async function inspectBootFiles(rootDir: string): Promise<VmLayerResult> {
  const kernel = basename(await readlink(join(rootDir, 'vmlinuz')).catch(() => ''));
  if (!kernel.startsWith('vmlinuz-')) throw new ComposeError('vm_layer_failed', 'vm-layer', 'vm-layer: no /vmlinuz symlink after installing the kernel');
  await stat(join(rootDir, 'initrd.img')).catch(() => {
    throw new ComposeError('vm_layer_failed', 'vm-layer', 'vm-layer: no /initrd.img after installing the kernel');
  });
  const efi = {
    shim: '/usr/lib/shim/shimx64.efi.signed',
    grub: '/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed',
    mokManager: '/usr/lib/shim/mmx64.efi.signed',
  };
  for (const f of Object.values(efi)) {
    await stat(join(rootDir, f)).catch(() => {
      throw new ComposeError('vm_layer_failed', 'vm-layer', `vm-layer: ${f} missing after installing shim-signed and grub-efi-amd64-signed`);
    });
  }
  return { kernel, efi };
}
