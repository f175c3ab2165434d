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

export interface IncusMetadataFields {
  architecture?: string;
  creationDate?: number;
  properties?: Record<string, string>;
  /** Raw metadata.yaml instead of the fields above. */
  yaml?: string;
}

/** A real incus.tar.xz (metadata.yaml and templates/, made with tar and xz) for a VM image. */
export async function makeIncusTarXz(fields: IncusMetadataFields = {}): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'imgsrv-meta-'));
  try {
    const props = fields.properties ?? { os: 'Debian', release: 'bookworm', description: 'Debian 12 (bookworm)', variant: 'default' };
    const yaml =
      fields.yaml ??
      [
        `architecture: ${fields.architecture ?? 'x86_64'}`,
        `creation_date: ${fields.creationDate ?? 1795400000}`,
        'properties:',
        ...Object.entries(props).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
        'templates: {}',
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
