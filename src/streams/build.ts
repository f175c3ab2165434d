import type { IncusImageType } from '../domain/catalog.ts';
import { incusArchitecture } from '../domain/incus.ts';
import type { FeedEntry, FeedSnapshot } from '../domain/feed.ts';
import type { StreamsImages, StreamsIndex, StreamsItem, StreamsProduct } from './types.ts';

/**
 * What an image of each Incus type is made of in a product version: the root item's ftype, and
 * the field of the `incus.tar.xz` item the client takes the fingerprint from for that root
 * (lxc/incus shared/simplestreams/products.go: no such field → the image is dropped).
 */
const ROOT = {
  'virtual-machine': { ftype: 'disk-kvm.img', combined: 'combined_disk-kvm-img_sha256' },
  container: { ftype: 'squashfs', combined: 'combined_squashfs_sha256' },
} as const satisfies Record<IncusImageType, { ftype: StreamsItem['ftype']; combined: keyof StreamsItem }>;

/**
 * Projects published artifacts into Simple Streams documents for the Incus client.
 *
 * - One product per published artifact (image, version, os, architecture, variant, type): the
 *   client gives an alias name to the first image that claims it, so an alias that must reach an
 *   older version has to be that version's alone. A container product's id ends in `:container`,
 *   so it never takes the id of the VM product of the same artifact coordinates.
 * - Aliases: `IMAGE/VERSION` for every version, `IMAGE/ALIAS` for every imgsrv alias (an exact
 *   version of that name wins, as in refs), plain `IMAGE` for `latest`; a non-default variant
 *   appends `/VARIANT` (and gets no plain `IMAGE`, which is the default variant's). A container
 *   and a VM image share these names, as on images.linuxcontainers.org: the client keys aliases
 *   by (name, type, architecture) and, without `--vm`, resolves a name as a container first and
 *   then as a VM (client/simplestreams_images.go GetImageAlias), so `incus launch imgsrv:IMAGE`
 *   and `incus image export imgsrv:IMAGE` find the container, `--vm` the VM.
 * - Version key: the publish time, `YYYYMMDD_HHMM` (UTC).
 * - Items point at the content-addressed blob routes: a VM version holds `disk-kvm.img` and
 *   `incus.tar.xz` with `combined_disk-kvm-img_sha256`, a container version `squashfs` and
 *   `incus.tar.xz` with `combined_squashfs_sha256`. Identical bytes (one fingerprint) become one
 *   product carrying the aliases of all.
 * - It asserts what the client would otherwise drop silently (see `assertValid`).
 */
export function buildFeed(snapshot: FeedSnapshot): { index: StreamsIndex; images: StreamsImages; skipped: string[] } {
  const skipped: string[] = [];
  const published = new Set(snapshot.entries.map((e) => `${e.image}\u0000${e.version}`));
  const versionOf = new Map(snapshot.entries.map((e) => [e.versionId, e.version]));

  // Alias names per version; an alias named like a published version of its image is that version's.
  const aliasNames = new Map<string, string[]>();
  for (const a of snapshot.aliases) {
    if (!versionOf.has(a.versionId) || published.has(`${a.image}\u0000${a.alias}`)) continue;
    aliasNames.set(a.versionId, [...(aliasNames.get(a.versionId) ?? []), a.alias]);
  }

  // Newest first, so the product kept for a fingerprint (and for a clash) is the newest.
  const entries = [...snapshot.entries].sort((a, b) => b.publishedAt.getTime() - a.publishedAt.getTime() || a.version.localeCompare(b.version));
  const byFingerprint = new Map<string, { key: string; type: IncusImageType; product: StreamsProduct; aliases: Set<string> }>();
  const keys = new Set<string>();
  for (const e of entries) {
    const arch = incusArchitecture(e.architecture);
    const key = `${e.image}:${e.version}:${e.operatingSystem}:${arch}:${e.variant}${e.type === 'container' ? ':container' : ''}`;
    const twin = byFingerprint.get(e.combinedSha256);
    const skip = (why: string) => skipped.push(`${e.image} ${e.version} ${e.operatingSystem}/${e.architecture}/${e.variant} (${e.type}): ${why}`);
    if (!arch) {
      skip('architecture unknown to Incus');
      continue;
    }
    if (keys.has(key)) {
      skip(`another ${e.type} artifact of this version has the same Incus architecture`);
      continue;
    }
    // One fingerprint is one image to the client, of one type.
    if (twin && twin.type !== e.type) {
      skip(`its fingerprint is already that of a ${twin.type} image (${twin.key})`);
      continue;
    }
    const suffix = e.variant === 'default' ? '' : `/${e.variant}`;
    const names = [e.version, ...(aliasNames.get(e.versionId) ?? [])].map((n) => `${e.image}/${n}${suffix}`);
    if (e.variant === 'default' && aliasNames.get(e.versionId)?.includes('latest')) names.push(e.image);
    if (twin) {
      names.forEach((n) => twin.aliases.add(n));
      continue;
    }
    keys.add(key);
    byFingerprint.set(e.combinedSha256, { key, type: e.type, product: product(e, arch), aliases: new Set(names) });
  }

  const products: Record<string, StreamsProduct> = {};
  for (const { key, product: p, aliases } of [...byFingerprint.values()].sort((a, b) => a.key.localeCompare(b.key))) {
    products[key] = { ...p, aliases: [...aliases].sort().join(',') };
  }
  const images: StreamsImages = { format: 'products:1.0', content_id: 'images', datatype: 'image-downloads', products };
  const index: StreamsIndex = {
    format: 'index:1.0',
    index: { images: { datatype: 'image-downloads', path: 'streams/v1/images.json', format: 'products:1.0', products: Object.keys(products) } },
  };
  assertValid(images);
  return { index, images, skipped };
}

const hex = (digest: string) => digest.replace(/^sha256:/, '');
const two = (n: number) => String(n).padStart(2, '0');

/** `YYYYMMDD_HHMM` in UTC: a serial the client reads as a date. */
export const serialOf = (d: Date) => `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}_${two(d.getUTCHours())}${two(d.getUTCMinutes())}`;

function product(e: FeedEntry, arch: string): StreamsProduct {
  const release = e.properties.release ?? e.version;
  const root = ROOT[e.type];
  const item = (ftype: StreamsItem['ftype'], blob: FeedEntry['root']): StreamsItem => ({ ftype, path: `v1/blobs/${blob.digest}`, size: blob.size, sha256: hex(blob.digest) });
  return {
    aliases: '',
    arch,
    os: e.operatingSystem,
    release,
    release_title: e.properties.description ?? release,
    variant: e.variant,
    versions: {
      [serialOf(e.publishedAt)]: {
        items: {
          'incus.tar.xz': { ...item('incus.tar.xz', e.metadata), [root.combined]: e.combinedSha256 },
          [root.ftype]: item(root.ftype, e.root),
        },
      },
    },
  };
}

/**
 * What the client would silently drop or misread: version keys that are not dates, hashes that
 * are not lowercase hex, fields of the wrong JSON type, alias lists with stray separators, a
 * version without exactly one root item and the combined hash for it, and two products with one
 * fingerprint.
 */
function assertValid(images: StreamsImages): void {
  const fingerprints = new Set<string>();
  const fail = (key: string, what: string) => {
    throw new Error(`Simple Streams product ${key}: ${what}`);
  };
  for (const [key, p] of Object.entries(images.products)) {
    for (const field of ['aliases', 'arch', 'os', 'release', 'release_title', 'variant'] as const) {
      if (typeof p[field] !== 'string') fail(key, `${field} is not a string`);
    }
    if (p.aliases.split(',').some((a) => a === '' || /\s/.test(a))) fail(key, `alias list "${p.aliases}" is malformed`);
    for (const [serial, version] of Object.entries(p.versions)) {
      if (!/^\d{8}_\d{4}$/.test(serial)) fail(key, `version key ${serial} does not start with a date`);
      for (const item of Object.values(version.items)) {
        if (!/^[0-9a-f]{64}$/.test(item.sha256) || !Number.isSafeInteger(item.size) || typeof item.path !== 'string') fail(key, `item ${item.ftype} is malformed`);
      }
      const roots = Object.values(ROOT).filter((r) => Object.values(version.items).some((i) => i.ftype === r.ftype));
      if (roots.length !== 1) fail(key, `version ${serial} needs exactly one of the items ${Object.values(ROOT).map((r) => r.ftype).join(', ')}`);
      const combined = version.items['incus.tar.xz']?.[roots[0]!.combined];
      if (!combined || !/^[0-9a-f]{64}$/.test(combined)) fail(key, `no ${roots[0]!.combined}`);
      if (fingerprints.has(combined!)) fail(key, `fingerprint ${combined} appears twice`);
      fingerprints.add(combined!);
    }
  }
}
