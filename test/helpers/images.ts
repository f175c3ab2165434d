import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real (small) qcow2 disk made by qemu-img, with a few bytes written into it. */
export async function makeQcow2(sizeMb = 16): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'imgsrv-qcow2-'));
  try {
    const raw = join(dir, 'disk.raw');
    await writeFile(raw, Buffer.concat([Buffer.from(`imgsrv test disk ${Math.random()}\n`), Buffer.alloc(1024 * 1024, 0x5a)]));
    execFileSync('qemu-img', ['resize', '-f', 'raw', raw, `${sizeMb}M`], { stdio: 'ignore' });
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, join(dir, 'disk.qcow2')], { stdio: 'ignore' });
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(dir, 'disk.qcow2')], { encoding: 'utf8' })) as { format: string };
    if (info.format !== 'qcow2') throw new Error(`qemu-img made ${info.format}`);
    return await readFile(join(dir, 'disk.qcow2'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A real (small) squashfs root filesystem made by mksquashfs (squashfs-tools): /etc/os-release,
 * an executable /sbin/init and a unique marker, owned by root, as a container image's rootfs.
 */
export async function makeSquashfs(osRelease = 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'imgsrv-squashfs-'));
  try {
    const root = join(dir, 'rootfs');
    await mkdir(join(root, 'etc'), { recursive: true });
    await mkdir(join(root, 'sbin'));
    await writeFile(join(root, 'etc', 'os-release'), osRelease);
    await writeFile(join(root, 'etc', 'imgsrv-test'), `imgsrv test rootfs ${Math.random()}\n`);
    await writeFile(join(root, 'sbin', 'init'), '#!/bin/sh\nexec sleep infinity\n', { mode: 0o755 });
    execFileSync('mksquashfs', [root, join(dir, 'rootfs.squashfs'), '-noappend', '-all-root', '-quiet', '-no-progress'], { stdio: 'ignore' });
    const image = await readFile(join(dir, 'rootfs.squashfs'));
    // "hsqs": the little-endian squashfs superblock magic.
    if (image.subarray(0, 4).toString('latin1') !== 'hsqs') throw new Error('mksquashfs made no squashfs');
    return image;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface IncusMetadataFields {
  architecture?: string;
  creationDate?: number;
  properties?: Record<string, string>;
  /** A container image's metadata: the hostname template applied to /etc/hostname on create and copy. */
  container?: boolean;
  /** Raw metadata.yaml instead of the fields above. */
  yaml?: string;
}

/** A real incus.tar.xz (metadata.yaml and templates/, made with tar and xz) for a VM image, or a container image. */
export async function makeIncusTarXz(fields: IncusMetadataFields = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'imgsrv-meta-'));
  try {
    const props = fields.properties ?? { os: 'Debian', release: 'bookworm', description: 'Debian 12 (bookworm)', variant: 'default' };
    const templates = fields.container ? ['templates:', '  /etc/hostname:', '    when: [create, copy]', '    template: hostname.tpl'] : ['templates: {}'];
    const yaml =
      fields.yaml ??
      [
        `architecture: ${fields.architecture ?? 'x86_64'}`,
        `creation_date: ${fields.creationDate ?? 1795400000}`,
        'properties:',
        ...Object.entries(props).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
        ...templates,
        '',
      ].join('\n');
    await writeFile(join(dir, 'metadata.yaml'), yaml);
    await mkdir(join(dir, 'templates'));
    await writeFile(join(dir, 'templates', 'hostname.tpl'), '{{ container.name }}\n');
    execFileSync('sh', ['-c', 'tar -C "$1" -cf - metadata.yaml templates | xz -c > "$1/incus.tar.xz"', 'sh', dir]);
    return await readFile(join(dir, 'incus.tar.xz'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
