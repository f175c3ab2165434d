import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * What the build host must have. `HOST_PACKAGES` is the list an install script passes to
 * `apt-get install --no-install-recommends` on Debian bookworm; `HOST_TOOLS` maps each binary
 * the pipeline runs to its package, so a worker can refuse compose jobs at start-up with the
 * exact package to install instead of failing mid-build.
 */
export const HOST_PACKAGES = [
  'mmdebstrap', 'qemu-system-x86', 'qemu-utils', 'ovmf', 'mtools', 'dosfstools',
  'e2fsprogs', 'fdisk', 'squashfs-tools', 'xz-utils', 'zstd',
] as const;

export const HOST_TOOLS: Readonly<Record<string, string>> = {
  mmdebstrap: 'mmdebstrap',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  mcopy: 'mtools',
  mmd: 'mtools',
  mdir: 'mtools',
  'mkfs.vfat': 'dosfstools',
  'mkfs.ext4': 'e2fsprogs',
  sfdisk: 'fdisk',
  mksquashfs: 'squashfs-tools',
  xz: 'xz-utils',
  zstd: 'zstd',
  tar: 'tar',
  useradd: 'passwd',
  groupadd: 'passwd',
  usermod: 'passwd',
  systemctl: 'systemd',
  'dpkg-query': 'dpkg',
};

/** OVMF firmware files the Secure Boot test needs (package ovmf). */
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.ms.fd';

const PATH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Returns the missing tools as "binary (package)"; empty when the host is ready. Builds also need root. */
export async function checkHostTools(): Promise<string[]> {
  const missing: string[] = [];
  for (const [bin, pkg] of Object.entries(HOST_TOOLS)) {
    let found = false;
    for (const d of PATH_DIRS) {
      try {
        await access(join(d, bin), constants.X_OK);
        found = true;
        break;
      } catch {
        // try the next directory
      }
    }
    if (!found) missing.push(`${bin} (${pkg})`);
  }
  for (const f of [OVMF_CODE, OVMF_VARS]) {
    try {
      await access(f, constants.R_OK);
    } catch {
      missing.push(`${f} (ovmf)`);
    }
  }
  if (process.getuid?.() !== 0) missing.push('root privileges (mmdebstrap, useradd --prefix, mkfs -d keep ownership only as root)');
  return missing;
}
