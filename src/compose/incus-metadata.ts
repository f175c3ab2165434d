import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toComposeError } from './errors.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * incus.tar.xz: the metadata half of a split Incus image (the other half is the qcow2 disk or
 * the squashfs rootfs). Incus requires `architecture` and a non-zero `creation_date`; the feed
 * builder reads `properties.os/release/description` for the product's release and title.
 * Templates set the instance's hostname and /etc/hosts on create and copy.
 *
 *   incus.tar.xz: metadata.yaml, templates/hostname.tpl, templates/hosts.tpl
 */
export type IncusImageKind = 'vm' | 'container';

export interface IncusMetadataInput {
  kind: IncusImageKind;
  /** Incus architecture name: x86_64. */
  architecture: string;
  /** Seconds since the epoch; must not be 0. */
  creationDate: number;
  os: string;
  release: string;
  variant: string;
  description: string;
  /** Build serial (YYYYMMDD_hhmm), informational. */
  serial: string;
}

/** metadata.yaml text. Every value is quoted: a YAML reader must not turn "12" into a number. */
export function incusMetadataYaml(m: IncusMetadataInput): string {
  const q = (s: string): string => JSON.stringify(s);
  return [
    `architecture: ${q(m.architecture)}`,
    `creation_date: ${Math.floor(m.creationDate)}`,
    'properties:',
    `  architecture: ${q(DEBIAN_ARCH[m.architecture] ?? m.architecture)}`,
    `  os: ${q(m.os)}`,
    `  release: ${q(m.release)}`,
    `  variant: ${q(m.variant)}`,
    `  description: ${q(m.description)}`,
    `  serial: ${q(m.serial)}`,
    `  type: ${q(m.kind === 'vm' ? 'disk-kvm.img' : 'squashfs')}`,
    'templates:',
    '  /etc/hostname:',
    '    when: ["create", "copy"]',
    '    template: hostname.tpl',
    '  /etc/hosts:',
    '    when: ["create", "copy"]',
    '    template: hosts.tpl',
    '',
  ].join('\n');
}

/** Image servers (images.linuxcontainers.org) put the distribution's name in properties.architecture. */
const DEBIAN_ARCH: Readonly<Record<string, string>> = { x86_64: 'amd64', aarch64: 'arm64' };

const HOSTNAME_TPL = '{{ instance.name }}\n';
const HOSTS_TPL = '127.0.0.1\tlocalhost\n127.0.1.1\t{{ instance.name }}\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n';

export interface IncusMetadataOptions extends StageContext {
  metadata: IncusMetadataInput;
  output: string;
}

/** Writes incus.tar.xz with fixed owner, order and mtimes, so equal metadata gives equal bytes. */
export async function writeIncusMetadata(opts: IncusMetadataOptions): Promise<{ path: string; size: number }> {
  if (!(opts.metadata.creationDate > 0)) throw toComposeError(new Error('creation_date must be positive'), 'metadata', 'metadata_failed');
  const staging = join(opts.workspace.dir, `incus-metadata-${opts.metadata.kind}`);
  try {
    await mkdir(join(staging, 'templates'), { recursive: true });
    await writeFile(join(staging, 'metadata.yaml'), incusMetadataYaml(opts.metadata));
    await writeFile(join(staging, 'templates/hostname.tpl'), HOSTNAME_TPL);
    await writeFile(join(staging, 'templates/hosts.tpl'), HOSTS_TPL);
    await exec(opts, 'tar', [
      '--create', '--xz', '--file', opts.output, '--directory', staging,
      '--owner=0', '--group=0', '--numeric-owner', '--sort=name', `--mtime=@${Math.floor(opts.metadata.creationDate)}`,
      'metadata.yaml', 'templates',
    ], { timeoutMs: 60_000 });
    return { path: opts.output, size: (await stat(opts.output)).size };
  } catch (err) {
    throw toComposeError(err, 'metadata', 'metadata_failed');
  }
}
