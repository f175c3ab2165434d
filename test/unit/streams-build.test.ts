import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { FeedAlias, FeedEntry } from '../../src/domain/feed.ts';
import { buildFeed, serialOf } from '../../src/streams/build.ts';

const h = (c: string) => c.repeat(64).slice(0, 64);
let n = 0;
function entry(over: Partial<FeedEntry> = {}): FeedEntry {
  n++;
  return {
    image: 'debian',
    version: `1.${n}`,
    versionId: `v${n}`,
    publishedAt: new Date(Date.UTC(2026, 10, 20, 8, n)),
    operatingSystem: 'debian',
    architecture: 'amd64',
    variant: 'default',
    type: 'virtual-machine',
    root: { digest: `sha256:${h(n.toString(16))}`, size: 1000 + n },
    metadata: { digest: `sha256:${h('e' + n.toString(16))}`, size: 300 + n },
    combinedSha256: h('c' + n.toString(16)),
    properties: { release: 'bookworm', description: 'Debian 12 (bookworm)' },
    ...over,
  };
}
/** A container image (squashfs rootfs) entry. */
const container = (over: Partial<FeedEntry> = {}) => entry({ type: 'container', ...over });
const alias = (image: string, name: string, versionId: string): FeedAlias => ({ image, alias: name, versionId });
const matchesGolden = (feed: ReturnType<typeof buildFeed>, file: string) => {
  const golden = new URL(`./fixtures/${file}`, import.meta.url);
  const actual = `${JSON.stringify({ index: feed.index, images: feed.images }, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN) writeFileSync(golden, actual);
  assert.equal(actual, readFileSync(golden, 'utf8'), 'run with UPDATE_GOLDEN=1 to accept a deliberate change');
};
const aliasesOf = (feed: ReturnType<typeof buildFeed>) => Object.fromEntries(Object.entries(feed.images.products).map(([k, p]) => [k, p.aliases.split(',')]));

describe('Simple Streams feed builder', () => {
  it('matches the golden documents for a catalog with versions, architectures, variants and aliases', () => {
    n = 0;
    const v1 = entry({ version: '12.4', versionId: 'v-124' });
    const v2 = entry({ version: '12.5', versionId: 'v-125' });
    const arm = entry({ version: '12.5', versionId: 'v-125', architecture: 'aarch64' });
    const desktop = entry({ version: '12.5', versionId: 'v-125', variant: 'desktop' });
    const other = entry({ image: 'alpine', version: '3.20', versionId: 'v-alp', operatingSystem: 'alpine', properties: { release: '3.20' } });
    const feed = buildFeed({
      entries: [v1, v2, arm, desktop, other],
      aliases: [alias('debian', 'latest', 'v-125'), alias('debian', 'stable', 'v-124'), alias('alpine', 'edge', 'v-alp')],
    });
    matchesGolden(feed, 'streams-golden.json');
    assert.deepEqual(feed.skipped, []);
  });

  it('matches the golden documents for container images beside VM images of the same versions', () => {
    n = 0;
    const vm = entry({ version: '12.5', versionId: 'v-125' });
    const ct = container({ version: '12.5', versionId: 'v-125' });
    const ctOld = container({ version: '12.4', versionId: 'v-124' });
    const ctDesktop = container({ version: '12.5', versionId: 'v-125', variant: 'desktop' });
    const ctArm = container({ version: '12.5', versionId: 'v-125', architecture: 'aarch64' });
    const feed = buildFeed({
      entries: [vm, ct, ctOld, ctDesktop, ctArm],
      aliases: [alias('debian', 'latest', 'v-125'), alias('debian', 'stable', 'v-124')],
    });
    matchesGolden(feed, 'streams-golden-containers.json');
    assert.deepEqual(feed.skipped, []);
  });

  it('gives an alias on an older version to that version alone, and plain IMAGE to latest', () => {
    const old = entry({ versionId: 'old' });
    const cur = entry({ versionId: 'cur' });
    const a = aliasesOf(buildFeed({ entries: [old, cur], aliases: [alias('debian', 'latest', 'cur'), alias('debian', 'stable', 'old')] }));
    assert.deepEqual(Object.values(a).map((x) => x.sort()), [[`debian/${old.version}`, 'debian/stable'], ['debian', `debian/${cur.version}`, 'debian/latest']]);
  });

  it('forgets a deleted alias and leaves out images without eligible artifacts', () => {
    const only = entry({ versionId: 'x' });
    const feed = buildFeed({ entries: [only], aliases: [] });
    assert.deepEqual(Object.values(aliasesOf(feed)), [[`debian/${only.version}`]]);
    const empty = buildFeed({ entries: [], aliases: [alias('debian', 'latest', 'gone')] });
    assert.deepEqual(empty.images.products, {});
    assert.deepEqual(empty.index.index.images.products, []);
  });

  it('suffixes a non-default variant and gives it no plain IMAGE alias', () => {
    const base = entry({ versionId: 'v' });
    const desktop = entry({ versionId: 'v', version: base.version, variant: 'desktop' });
    const a = Object.values(aliasesOf(buildFeed({ entries: [base, desktop], aliases: [alias('debian', 'latest', 'v')] })));
    assert.ok(a.some((x) => x.includes('debian') && x.includes('debian/latest')));
    assert.ok(a.some((x) => x.includes('debian/latest/desktop') && x.includes(`debian/${base.version}/desktop`) && !x.includes('debian')));
  });

  it('lets an exact version win over an alias of the same name, as refs do', () => {
    const named = entry({ version: 'lts', versionId: 'lts' });
    const cur = entry({ versionId: 'cur' });
    const a = aliasesOf(buildFeed({ entries: [named, cur], aliases: [alias('debian', 'lts', 'cur')] }));
    const owners = Object.entries(a).filter(([, names]) => names.includes('debian/lts'));
    assert.equal(owners.length, 1);
    assert.match(owners[0]![0], /:lts:/);
  });

  it('publishes identical bytes once, with the aliases of every version that holds them', () => {
    const first = entry({ versionId: 'a', combinedSha256: h('f') });
    const again = entry({ versionId: 'b', combinedSha256: h('f') });
    const feed = buildFeed({ entries: [first, again], aliases: [alias('debian', 'old', 'a')] });
    assert.equal(Object.keys(feed.images.products).length, 1);
    assert.deepEqual(Object.values(aliasesOf(feed))[0]!.sort(), [`debian/${first.version}`, `debian/${again.version}`, 'debian/old'].sort());
  });

  it('maps architectures to Incus names and leaves out what Incus does not know', () => {
    const feed = buildFeed({ entries: [entry({ architecture: 'x86_64' }), entry({ architecture: 'ppc64le' }), entry({ architecture: 'sparc64' })], aliases: [] });
    assert.deepEqual(Object.values(feed.images.products).map((p) => p.arch).sort(), ['amd64', 'ppc64el']);
    assert.equal(feed.skipped.length, 1);
    assert.match(feed.skipped[0]!, /sparc64.*unknown to Incus/);
  });

  it('writes every field with the JSON type the client needs, and date version keys', () => {
    const e = entry({ properties: {} });
    const p = Object.values(buildFeed({ entries: [e], aliases: [] }).images.products)[0]!;
    assert.deepEqual([typeof p.release, typeof p.release_title, typeof p.aliases], ['string', 'string', 'string']);
    assert.equal(p.release, e.version, 'without metadata properties the release is the version');
    assert.deepEqual(Object.keys(p.versions), [serialOf(e.publishedAt)]);
    assert.equal(serialOf(new Date('2026-01-02T03:04:59Z')), '20260102_0304');
    const items = Object.values(p.versions)[0]!.items;
    assert.deepEqual(items['disk-kvm.img'], { ftype: 'disk-kvm.img', path: `v1/blobs/${e.root.digest}`, size: e.root.size, sha256: e.root.digest.slice(7) });
    assert.equal(items['incus.tar.xz']!['combined_disk-kvm-img_sha256'], e.combinedSha256);
  });

  it('gives a container image a squashfs item and combined_squashfs_sha256 on its metadata item', () => {
    const e = container();
    const p = Object.values(buildFeed({ entries: [e], aliases: [] }).images.products)[0]!;
    const items = Object.values(p.versions)[0]!.items;
    assert.deepEqual(Object.keys(items).sort(), ['incus.tar.xz', 'squashfs']);
    assert.deepEqual(items.squashfs, { ftype: 'squashfs', path: `v1/blobs/${e.root.digest}`, size: e.root.size, sha256: e.root.digest.slice(7) });
    assert.deepEqual(items['incus.tar.xz'], {
      ftype: 'incus.tar.xz',
      path: `v1/blobs/${e.metadata.digest}`,
      size: e.metadata.size,
      sha256: e.metadata.digest.slice(7),
      combined_squashfs_sha256: e.combinedSha256,
    });
  });

  it('keeps container and VM products of one version apart: own product ids, the same alias names', () => {
    const vm = entry({ versionId: 'v' });
    const ct = container({ versionId: 'v', version: vm.version });
    const feed = buildFeed({ entries: [vm, ct], aliases: [alias('debian', 'latest', 'v'), alias('debian', 'stable', 'v')] });
    const a = aliasesOf(feed);
    // The client keys aliases by (name, type, architecture): without --vm a name is the container's.
    const names = ['debian', `debian/${vm.version}`, 'debian/latest', 'debian/stable'];
    assert.deepEqual(a, { [`debian:${vm.version}:debian:amd64:default`]: names, [`debian:${vm.version}:debian:amd64:default:container`]: names });
    const p = feed.images.products[`debian:${vm.version}:debian:amd64:default:container`]!;
    assert.equal(p.variant, 'default', 'the type is in the items and the product id, not the variant');
  });

  it('leaves out a container whose fingerprint a (newer) VM image already has, and a second container of one architecture', () => {
    const twin = container({ combinedSha256: h('a') });
    const vm = entry({ combinedSha256: h('a') });
    const one = container({ versionId: 'x', version: '9' });
    const again = container({ versionId: 'x', version: '9', architecture: 'x86_64' });
    const feed = buildFeed({ entries: [vm, twin, one, again], aliases: [] });
    assert.equal(Object.keys(feed.images.products).length, 2);
    assert.equal(feed.skipped.length, 2);
    assert.ok(feed.skipped.some((s) => /\(container\): its fingerprint is already that of a virtual-machine image/.test(s)));
    assert.ok(feed.skipped.some((s) => /\(container\): another container artifact of this version has the same Incus architecture/.test(s)));
  });

  it('publishes identical container bytes once, with the aliases of every version', () => {
    const first = container({ versionId: 'a', combinedSha256: h('9') });
    const again = container({ versionId: 'b', combinedSha256: h('9') });
    const feed = buildFeed({ entries: [first, again], aliases: [] });
    assert.deepEqual(Object.values(aliasesOf(feed)), [[`debian/${first.version}`, `debian/${again.version}`].sort()]);
  });
});
