import { incusArchitecture } from '../domain/incus.ts';
import type { FeedEntry, FeedSnapshot } from '../domain/feed.ts';
import type { StreamsImages, StreamsIndex, StreamsProduct } from './types.ts';

/**
 * Projects published artifacts into Simple Streams documents for the Incus client.
 *
 * - One product per published artifact (image, version, os, architecture, variant): the client
 *   gives an alias name to the first image that claims it, so an alias that must reach an
 *   older version has to be that version's alone.
 * - Aliases: `IMAGE/VERSION` for every version, `IMAGE/ALIAS` for every imgsrv alias (an exact
 *   version of that name wins, as in refs), plain `IMAGE` for `latest`; a non-default variant
 *   appends `/VARIANT` (and gets no plain `IMAGE`, which is the default variant's).
 * - Version key: the publish time, `YYYYMMDD_HHMM` (UTC).
 * - Items point at the content-addressed blob routes; identical bytes (one fingerprint) become
 *   one product carrying the aliases of all.
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
  const byFingerprint = new Map<string, { key: string; product: StreamsProduct; aliases: Set<string> }>();
  const keys = new Set<string>();
  for (const e of entries) {
    const arch = incusArchitecture(e.architecture);
    const key = `${e.image}:${e.version}:${e.operatingSystem}:${arch}:${e.variant}`;
    if (!arch || keys.has(key)) {
      skipped.push(`${e.image} ${e.version} ${e.operatingSystem}/${e.architecture}/${e.variant}: ${arch ? 'another artifact of this version has the same Incus architecture' : 'architecture unknown to Incus'}`);
      continue;
    }
    const suffix = e.variant === 'default' ? '' : `/${e.variant}`;
    const names = [e.version, ...(aliasNames.get(e.versionId) ?? [])].map((n) => `${e.image}/${n}${suffix}`);
    if (e.variant === 'default' && aliasNames.get(e.versionId)?.includes('latest')) names.push(e.image);
    const twin = byFingerprint.get(e.combinedSha256);
    if (twin) {
      names.forEach((n) => twin.aliases.add(n));
      continue;
    }
    keys.add(key);
    byFingerprint.set(e.combinedSha256, { key, product: product(e, arch), aliases: new Set(names) });
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
          'incus.tar.xz': {
            ftype: 'incus.tar.xz',
            path: `v1/blobs/${e.metadata.digest}`,
            size: e.metadata.size,
            sha256: hex(e.metadata.digest),
            'combined_disk-kvm-img_sha256': e.combinedSha256,
          },
          'disk-kvm.img': { ftype: 'disk-kvm.img', path: `v1/blobs/${e.disk.digest}`, size: e.disk.size, sha256: hex(e.disk.digest) },
        },
      },
    },
  };
}

/**
 * What the client would silently drop or misread: version keys that are not dates, hashes that
 * are not lowercase hex, fields of the wrong JSON type, alias lists with stray separators, and
 * two products with one fingerprint.
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
      const combined = version.items['incus.tar.xz']?.['combined_disk-kvm-img_sha256'];
      if (!combined || !/^[0-9a-f]{64}$/.test(combined)) fail(key, 'no combined_disk-kvm-img_sha256');
      if (fingerprints.has(combined!)) fail(key, `fingerprint ${combined} appears twice`);
      fingerprints.add(combined!);
    }
  }
}
