import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random } from '../helpers/bytes.ts';
import {
  EMPTY_JSON, MT, assertBytes, assertError, content, distributionFails, image, index, nextLink, once, pushBlob, pushImage, pushManifest,
  randomConfig, repoName, useRegistry, walkPages, type Content, type Image,
} from '../helpers/oci-http.ts';

// OCI Distribution Specification 1.1, workflows "Content discovery" (tags, catalog, referrers)
// and "Content management" (deletes).

const accept = { accept: [MT.ociManifest, MT.ociIndex].join(', ') };
const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

describe('OCI content discovery: tags and catalog', () => {
  const reg = useRegistry();
  const repo = repoName('tags');
  // Lexical order is by code unit: digits, then upper case, then `_`, then lower case.
  const tags = ['latest', 'v1.0', 'V2', '_x', '1.2', 'a-b', 'a.b', 'a_b', 'zeta'];
  const sorted = [...tags].sort(byteOrder);
  const tagged = once(async () => {
    const img = image();
    await pushImage(reg, repo, img, tags[0]);
    for (const tag of tags.slice(1)) await pushManifest(reg, repo, tag, img.manifest);
  });

  it('tags/list answers {name, tags} with every tag', async () => {
    await tagged();
    const res = await reg.request('GET', `/v2/${repo}/tags/list`);
    assert.equal(res.status, 200);
    assert.deepEqual({ ...res.json, tags: [...res.json.tags].sort(byteOrder) }, { name: repo, tags: sorted });
  });

  it('tags/list lists the tags in lexical order', distributionFails('lists tags in storage order'), async () => {
    await tagged();
    assert.deepEqual((await reg.request('GET', `/v2/${repo}/tags/list`)).json.tags, sorted);
  });

  it('tags/list ?n= limits the page, ?last= continues after that tag, Link rel="next" while more remain', distributionFails('ignores n and last on tags/list'), async () => {
    await tagged();
    const first = await reg.request('GET', `/v2/${repo}/tags/list?n=4`);
    assert.deepEqual(first.json.tags, sorted.slice(0, 4));
    assert.ok(nextLink(reg, first), 'a page with more after it links to the next');
    const pages = await walkPages(reg, `/v2/${repo}/tags/list?n=4`, 'tags');
    assert.deepEqual(pages, [sorted.slice(0, 4), sorted.slice(4, 8), sorted.slice(8)]);
    const after = await reg.request('GET', `/v2/${repo}/tags/list?${new URLSearchParams({ n: '2', last: sorted[2]! })}`);
    assert.deepEqual(after.json, { name: repo, tags: sorted.slice(3, 5) });
    const past = await reg.request('GET', `/v2/${repo}/tags/list?${new URLSearchParams({ n: '5', last: sorted.at(-1)! })}`);
    assert.equal(past.status, 200);
    assert.deepEqual(past.json.tags ?? [], []);
    assert.equal(nextLink(reg, past), undefined);
  });

  it('tags/list of an unknown repository is 404 NAME_UNKNOWN', async () => {
    await tagged();
    assertError(await reg.request('GET', `/v2/${repoName('none')}/tags/list`), 404, 'NAME_UNKNOWN');
  });

  it('/v2/_catalog lists repositories in lexical order, paginated by n and last with Link rel="next"', async () => {
    await tagged();
    const prefix = repoName('cat');
    const mine = [`${prefix}/b`, `${prefix}/a`, `${prefix}/c/d`];
    for (const name of mine) await pushImage(reg, name, image(), 'latest');
    const all = await reg.request('GET', '/v2/_catalog');
    assert.equal(all.status, 200);
    const listed: string[] = all.json.repositories;
    assert.deepEqual(listed, [...listed].sort(byteOrder));
    for (const name of [...mine, repo]) assert.ok(listed.includes(name), name);
    const pages = await walkPages(reg, '/v2/_catalog?n=2', 'repositories');
    assert.ok(pages.every((p) => p.length <= 2));
    assert.deepEqual(pages.flat(), listed);
    const after = await reg.request('GET', `/v2/_catalog?${new URLSearchParams({ n: '2', last: `${prefix}/a` })}`);
    assert.deepEqual(after.json.repositories, [`${prefix}/b`, `${prefix}/c/d`]);
    assert.ok(nextLink(reg, await reg.request('GET', `/v2/_catalog?n=1`)));
  });
});

describe('OCI content discovery: referrers', () => {
  const reg = useRegistry();
  const repo = repoName('refs');
  const peanut = 'application/vnd.spec.peanut.butter';
  let subject: Image;
  let refs: { m: Content; artifactType: string; annotations?: Record<string, string> }[];
  const dangling = image().manifest;
  let onDangling: Content;

  const setup = once(async () => {
    subject = image();
    await pushImage(reg, repo, subject, 'subject');
    await pushBlob(reg, repo, EMPTY_JSON);
    // artifactType from config.mediaType; from the manifest's artifactType; an index's own; none annotated.
    const viaConfig = image({ config: randomConfig(peanut), layers: [EMPTY_JSON], subject: subject.manifest, annotations: { 'org.example.test': 'config a' } });
    const viaField = image({ artifactType: peanut, config: EMPTY_JSON, subject: subject.manifest, annotations: { 'org.example.test': 'layer a', other: 'x' } });
    const plain = image({ artifactType: 'application/vnd.spec.jam', config: EMPTY_JSON, subject: subject.manifest });
    for (const img of [viaConfig, viaField, plain]) await pushImage(reg, repo, img);
    const idx = index({ manifests: [viaConfig.manifest, viaField.manifest], artifactType: 'application/vnd.spec.stand', subject: subject.manifest, annotations: { 'org.example.test': 'index' } });
    await pushManifest(reg, repo, idx.digest, idx);
    refs = [
      { m: viaConfig.manifest, artifactType: peanut, annotations: { 'org.example.test': 'config a' } },
      { m: viaField.manifest, artifactType: peanut, annotations: { 'org.example.test': 'layer a', other: 'x' } },
      { m: plain.manifest, artifactType: 'application/vnd.spec.jam' },
      { m: idx, artifactType: 'application/vnd.spec.stand', annotations: { 'org.example.test': 'index' } },
    ];
    const danglingRef = image({ artifactType: 'application/vnd.spec.sig', config: EMPTY_JSON, subject: dangling });
    await pushImage(reg, repo, danglingRef);
    onDangling = danglingRef.manifest;
  });

  /** GET referrers: 200, exactly the index media type, a valid index body. */
  async function referrers(digest: string, query = '', inRepo = repo) {
    const res = await reg.request('GET', `/v2/${inRepo}/referrers/${digest}${query}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MT.ociIndex, 'exactly this Content-Type (oras compares the string)');
    assert.equal(res.json.schemaVersion, 2);
    assert.equal(res.json.mediaType, MT.ociIndex);
    assert.ok(Array.isArray(res.json.manifests));
    return res;
  }
  const expected = (r: (typeof refs)[number]) => {
    const d: Record<string, unknown> = { mediaType: r.m.mediaType, digest: r.m.digest, size: r.m.size, artifactType: r.artifactType };
    if (r.annotations) d.annotations = r.annotations;
    return d;
  };
  const sortByDigest = (list: Record<string, unknown>[]) => [...list].sort((a, b) => byteOrder(String(a.digest), String(b.digest)));

  it('lists every referrer as a descriptor with mediaType, digest, size, artifactType and its own annotations', distributionFails('has no referrers API'), async () => {
    await setup();
    const res = await referrers(subject.manifest.digest);
    // A referrer without annotations may be listed with none or with `{}`.
    const got = res.json.manifests.map(({ annotations, ...d }: { annotations?: object }) => (annotations && Object.keys(annotations).length > 0 ? { ...d, annotations } : d));
    assert.deepEqual(sortByDigest(got), sortByDigest(refs.map(expected)));
    assert.equal(nextLink(reg, res), undefined);
  });

  it('?artifactType= filters and says so with OCI-Filters-Applied: artifactType', distributionFails('has no referrers API'), async () => {
    await setup();
    const res = await referrers(subject.manifest.digest, `?artifactType=${encodeURIComponent(peanut)}`);
    assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(sortByDigest(res.json.manifests), sortByDigest(refs.filter((r) => r.artifactType === peanut).map(expected)));
    const none = await referrers(subject.manifest.digest, '?artifactType=application/vnd.spec.nothing');
    assert.deepEqual(none.json.manifests, []);
  });

  it('a subject that was never pushed lists its referrers; an unknown digest or another repository gives an empty index', distributionFails('has no referrers API'), async () => {
    await setup();
    assert.deepEqual((await referrers(dangling.digest)).json.manifests.map((d: { digest: string }) => d.digest), [onDangling.digest]);
    assert.deepEqual((await referrers(content(random(8)).digest)).json.manifests, []);
    const other = repoName('refs-other');
    await pushImage(reg, other, subject, 'subject');
    assert.deepEqual((await referrers(subject.manifest.digest, '', other)).json.manifests, []);
  });

  it('a malformed digest is 400 with an OCI error code', distributionFails('has no referrers API'), async () => {
    await setup();
    for (const bad of ['sha256:totallywrong', 'sha256:ABC', 'nodigest']) {
      assertError(await reg.request('GET', `/v2/${repo}/referrers/${bad}`), 400, ['DIGEST_INVALID', 'MANIFEST_INVALID']);
    }
  });
});

describe('OCI content management', () => {
  const reg = useRegistry();
  const tagsOf = async (repo: string) => (await reg.request('GET', `/v2/${repo}/tags/list`)).json?.tags ?? [];

  it('DELETE of a manifest by digest answers 202; then it is 404 MANIFEST_UNKNOWN and the tags pointing at it are gone', async () => {
    const repo = repoName('del');
    const img = image();
    await pushImage(reg, repo, img, 't1');
    await pushManifest(reg, repo, 't2', img.manifest);
    await pushImage(reg, repo, image(), 'keep');
    assert.equal((await reg.request('DELETE', `/v2/${repo}/manifests/${img.manifest.digest}`)).status, 202);
    assertError(await reg.request('GET', `/v2/${repo}/manifests/${img.manifest.digest}`, { headers: accept }), 404, 'MANIFEST_UNKNOWN');
    assert.equal((await reg.request('HEAD', `/v2/${repo}/manifests/${img.manifest.digest}`, { headers: accept })).status, 404);
    for (const t of ['t1', 't2']) assertError(await reg.request('GET', `/v2/${repo}/manifests/${t}`, { headers: accept }), 404, 'MANIFEST_UNKNOWN');
    assert.deepEqual(await tagsOf(repo), ['keep']);
    assert.equal((await reg.request('GET', `/v2/${repo}/manifests/keep`, { headers: accept })).status, 200);
  });

  it('DELETE of a tag answers 202 and removes only that tag', distributionFails('refuses tag deletes with 400 DIGEST_INVALID'), async () => {
    const repo = repoName('del-tag');
    const img = image();
    await pushImage(reg, repo, img, 't1');
    await pushManifest(reg, repo, 't2', img.manifest);
    assert.equal((await reg.request('DELETE', `/v2/${repo}/manifests/t1`)).status, 202);
    assertError(await reg.request('GET', `/v2/${repo}/manifests/t1`, { headers: accept }), 404, 'MANIFEST_UNKNOWN');
    for (const ref of ['t2', img.manifest.digest]) {
      assertBytes((await reg.request('GET', `/v2/${repo}/manifests/${ref}`, { headers: accept })).body, img.manifest.bytes, ref);
    }
    assert.deepEqual(await tagsOf(repo), ['t2']);
  });

  it('DELETE of an unknown manifest or blob is 404 with MANIFEST_UNKNOWN or BLOB_UNKNOWN', async () => {
    const repo = repoName('del-none');
    await pushImage(reg, repo, image(), 'latest');
    const unknown = content(random(8)).digest;
    assertError(await reg.request('DELETE', `/v2/${repo}/manifests/${unknown}`), 404, 'MANIFEST_UNKNOWN');
    assertError(await reg.request('DELETE', `/v2/${repo}/blobs/${unknown}`), 404, 'BLOB_UNKNOWN');
  });

  it('DELETE of a blob answers 202 (also while a manifest uses it); then it is 404 there but still served by another repository', async () => {
    const repo = repoName('del-blob');
    const other = repoName('del-blob-other');
    const img = image();
    await pushImage(reg, repo, img, 'latest');
    await pushBlob(reg, other, img.layers[0]!);
    assert.equal((await reg.request('DELETE', `/v2/${repo}/blobs/${img.layers[0]!.digest}`)).status, 202);
    assertError(await reg.request('GET', `/v2/${repo}/blobs/${img.layers[0]!.digest}`), 404, 'BLOB_UNKNOWN');
    assert.equal((await reg.request('HEAD', `/v2/${repo}/blobs/${img.layers[0]!.digest}`)).status, 404);
    assertBytes((await reg.request('GET', `/v2/${other}/blobs/${img.layers[0]!.digest}`)).body, img.layers[0]!.bytes);
  });

  it("a blob deleted from a repository stays readable at imgsrv's /v1/blobs/{digest}", distributionFails('has no imgsrv /v1 API'), async () => {
    const repo = repoName('del-cas');
    const blob = await pushBlob(reg, repo, content(random(256)));
    const viaV1 = async () => {
      const res = await fetch(`${reg.url}/v1/blobs/${blob.digest}`);
      assert.equal(res.status, 200, 'an OCI blob is a CAS blob');
      assertBytes(Buffer.from(await res.arrayBuffer()), blob.bytes);
    };
    await viaV1();
    assert.equal((await reg.request('DELETE', `/v2/${repo}/blobs/${blob.digest}`)).status, 202);
    assert.equal((await reg.request('HEAD', `/v2/${repo}/blobs/${blob.digest}`)).status, 404);
    await viaV1();
  });

  it('deleting a referrer removes it from the referrers of its subject', distributionFails('has no referrers API'), async () => {
    const repo = repoName('del-ref');
    const subject = image();
    await pushImage(reg, repo, subject, 'latest');
    await pushBlob(reg, repo, EMPTY_JSON);
    const [keep, drop] = [image({ artifactType: 'application/vnd.spec.a', config: EMPTY_JSON, subject: subject.manifest }), image({ artifactType: 'application/vnd.spec.b', config: EMPTY_JSON, subject: subject.manifest })];
    for (const r of [keep, drop]) await pushImage(reg, repo, r);
    assert.equal((await reg.request('DELETE', `/v2/${repo}/manifests/${drop.manifest.digest}`)).status, 202);
    const res = await reg.request('GET', `/v2/${repo}/referrers/${subject.manifest.digest}`);
    assert.deepEqual(res.json.manifests.map((d: { digest: string }) => d.digest), [keep.manifest.digest]);
  });
});
