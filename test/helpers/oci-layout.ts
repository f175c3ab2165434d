import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/**
 * OCI image layouts (image-spec `image-layout.md`) for the real-client tests: a small image that
 * skopeo and podman accept as `oci:DIR:TAG`, built here byte by byte so that what comes back out of
 * a registry can be compared with what went in.
 *
 *   DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   DIR/index.json            one manifest descriptor, tagged by org.opencontainers.image.ref.name
 *   DIR/blobs/sha256/<hex>    config, gzip tar layers, image manifest
 */

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** Every timestamp in the image (tar mtime, config `created`): fixed, so equal options give equal bytes. */
const EPOCH = Date.UTC(2026, 0, 1) / 1000;

export const sha256Digest = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Where a layout keeps the blob `digest`; throws for anything but a sha256 digest, so no path escapes DIR. */
export function layoutBlobPath(dir: string, digest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return join(dir, 'blobs', 'sha256', m[1]!);
}

export interface TarEntry {
  /** Relative path without a leading slash; directories end without a slash too. At most 99 bytes. */
  path: string;
  /** File content; absent for a directory. */
  data?: Buffer;
  mode?: number;
}

/**
 * A POSIX ustar archive of `entries`, in order, owned by root, with fixed mtimes: the same entries
 * always give the same bytes (what a layer digest needs). Only short names; nothing here needs more.
 */
export function tarArchive(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data ?? Buffer.alloc(0);
    blocks.push(tarHeader({ ...entry, size: data.length }), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024)); // end of archive: two zero blocks
  return Buffer.concat(blocks);
}

function tarHeader(entry: TarEntry & { size: number }): Buffer {
  const isDir = entry.data === undefined;
  const name = isDir ? `${entry.path}/` : entry.path;
  if (Buffer.byteLength(name) > 99 || name.startsWith('/')) throw new Error(`tar name not supported: ${name}`);
  const h = Buffer.alloc(512);
  const put = (offset: number, length: number, value: string) => h.write(value, offset, length, 'utf8');
  const octal = (offset: number, length: number, value: number) => put(offset, length - 1, value.toString(8).padStart(length - 1, '0'));
  put(0, 100, name);
  octal(100, 8, entry.mode ?? (isDir ? 0o755 : 0o644));
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, entry.size);
  octal(136, 12, EPOCH);
  put(148, 8, ' '.repeat(8)); // checksum is computed with its own field as spaces
  put(156, 1, isDir ? '5' : '0');
  put(257, 8, 'ustar\u000000');
  put(265, 32, 'root');
  put(297, 32, 'root');
  let sum = 0;
  for (const byte of h) sum += byte;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\u0000 `);
  return h;
}

/** `size` bytes that look random (incompressible) but are a pure function of `seed`. */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, n = 0; offset < size; offset += 32, n++) createHash('sha256').update(`${seed}/${n}`).digest().copy(out, offset);
  return out;
}

export interface OciLayoutOptions {
  /** Created (with parents) if missing; an existing layout there is overwritten, not merged. */
  dir: string;
  tag?: string;
  /** Number of gzip tar layers (default 3), each with a directory, a text file and seeded random bytes. */
  layers?: number;
  /** Size of each layer's random file (default 48 KiB: small, but more than one gzip block). */
  layerBytes?: number;
  /** Varies every byte of the image; equal options give byte-equal layouts. */
  seed?: string;
}

export interface OciLayoutImage {
  dir: string;
  tag: string;
  /** `sha256:…` of the manifest blob, as index.json names it: what a registry must answer as Docker-Content-Digest. */
  manifestDigest: string;
  /** The manifest exactly as stored in the layout (a registry must serve these bytes). */
  manifest: Buffer;
  configDigest: string;
  /** Compressed layer digests, bottom layer first. */
  layerDigests: string[];
  /** Every blob of the layout by digest: config, layers and manifest. */
  blobs: Map<string, Buffer>;
}

/** Writes a real multi-layer image (amd64/linux, uncompressed diff_ids in the config) as an OCI layout. */
export async function writeOciLayout(opts: OciLayoutOptions): Promise<OciLayoutImage> {
  const { dir, tag = 'v1', layers = 3, layerBytes = 48 * 1024, seed = 'imgsrv-oci-e2e' } = opts;
  const blobs = new Map<string, Buffer>();
  const add = (bytes: Buffer) => {
    const digest = sha256Digest(bytes);
    blobs.set(digest, bytes);
    return { digest, size: bytes.length };
  };

  const diffIds: string[] = [];
  const layerDescriptors = Array.from({ length: layers }, (_, i) => {
    const tar = tarArchive([
      { path: `layer${i}` },
      { path: `layer${i}/hello.txt`, data: Buffer.from(`layer ${i} of ${seed}\n`) },
      { path: `layer${i}/random.bin`, data: seededBytes(`${seed}/layer${i}`, layerBytes) },
    ]);
    diffIds.push(sha256Digest(tar));
    return { mediaType: MEDIA_TYPES.layerGzip, ...add(gzipSync(tar, { level: 9 })) };
  });
  const created = new Date(EPOCH * 1000).toISOString();
  const config = {
    created,
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'org.opencontainers.image.title': seed } },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map((_, i) => ({ created, created_by: `imgsrv test layer ${i}` })),
  };
  const configDescriptor = { mediaType: MEDIA_TYPES.config, ...add(Buffer.from(JSON.stringify(config))) };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: configDescriptor, layers: layerDescriptors }));
  const manifestDescriptor = add(manifest);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [{ mediaType: MEDIA_TYPES.manifest, ...manifestDescriptor, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };

  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [digest, bytes] of blobs) await writeFile(layoutBlobPath(dir, digest), bytes);
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  return {
    dir,
    tag,
    manifestDigest: manifestDescriptor.digest,
    manifest,
    configDigest: configDescriptor.digest,
    layerDigests: layerDescriptors.map((l) => l.digest),
    blobs,
  };
}

/**
 * Every blob in a layout (one written by a tool, say), by digest. Throws if a file's content does
 * not hash to its name, so a comparison of two maps also proves each side is internally sound.
 */
export async function readLayoutBlobs(dir: string): Promise<Map<string, Buffer>> {
  const blobs = new Map<string, Buffer>();
  for (const hex of (await readdir(join(dir, 'blobs', 'sha256'))).sort()) {
    const bytes = await readFile(join(dir, 'blobs', 'sha256', hex));
    const digest = `sha256:${hex}`;
    if (sha256Digest(bytes) !== digest) throw new Error(`${dir}: blob ${hex} does not match its digest`);
    blobs.set(digest, bytes);
  }
  return blobs;
}
