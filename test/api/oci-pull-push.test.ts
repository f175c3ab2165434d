import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random } from '../helpers/bytes.ts';
import {
  CLIENT_ACCEPT, MT, assertBytes, assertError, content, distributionFails, image, index, location, once, patchChunk, pushBlob, pushImage,
  pushManifest, repoName, serialise, startUpload, useRegistry, withQuery,
} from '../helpers/oci-http.ts';

// OCI Distribution Specification 1.1, workflows "Pull" and "Push", asserted against the spec's
// MUSTs and the statuses imgsrv issue 13 fixes where the spec allows a choice.

const octets = { 'content-type': 'application/octet-stream' };
const unknownDigest = () => content(random(16)).digest;

describe('OCI pull', () => {
  const reg = useRegistry();
  const repo = repoName('pull');
  const img = image({ layers: 2, extra: { newUnspecifiedField: 'aGVsbG8gd29ybGQ=' } });
  // Pushed on first use, so that each case fails on its own while the registry is being built.
  const pushed = once(() => pushImage(reg, repo, img, 'v1'));

  it('GET /v2/ answers 200 with Docker-Distribution-API-Version registry/2.0 when authenticated, 401 with a challenge when not', async () => {
    const ok = await reg.request('GET', '/v2/');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('docker-distribution-api-version'), 'registry/2.0');
    const anonymous = await reg.request('GET', '/v2/', { auth: 'anonymous' });
    assertError(anonymous, 401, 'UNAUTHORIZED');
    assert.ok(anonymous.headers.get('www-authenticate'), 'a 401 carries WWW-Authenticate');
    assert.equal(anonymous.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('blob HEAD and GET: 404 BLOB_UNKNOWN when unknown, else 200 with Docker-Content-Digest, Content-Length and the bytes', async () => {
    await pushed();
    const layer = img.layers[0]!;
    assert.equal((await reg.request('HEAD', `/v2/${repo}/blobs/${unknownDigest()}`)).status, 404);
    assertError(await reg.request('GET', `/v2/${repo}/blobs/${unknownDigest()}`), 404, 'BLOB_UNKNOWN');
    assertError(await reg.request('GET', `/v2/${repoName('none')}/blobs/${layer.digest}`), 404, ['BLOB_UNKNOWN', 'NAME_UNKNOWN']);
    const head = await reg.request('HEAD', `/v2/${repo}/blobs/${layer.digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), layer.digest);
    assert.equal(head.headers.get('content-length'), String(layer.size));
    assert.equal(head.body.length, 0);
    const get = await reg.request('GET', `/v2/${repo}/blobs/${layer.digest}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('docker-content-digest'), layer.digest);
    assert.equal(get.headers.get('content-length'), String(layer.size));
    assertBytes(get.body, layer.bytes);
  });

  it('blob GET with a single Range answers 206 with Content-Range and those bytes; the ETag is stable and revalidates', async () => {
    const blob = await pushBlob(reg, repo, content(random(1000)));
    const path = `/v2/${repo}/blobs/${blob.digest}`;
    for (const [range, start, end] of [['bytes=10-19', 10, 19], ['bytes=990-', 990, 999], ['bytes=-5', 995, 999]] as const) {
      const part = await reg.request('GET', path, { headers: { range } });
      assert.equal(part.status, 206, range);
      assert.equal(part.headers.get('content-range'), `bytes ${start}-${end}/1000`, range);
      assertBytes(part.body, blob.bytes.subarray(start, end + 1), range);
    }
    const etag = (await reg.request('HEAD', path)).headers.get('etag');
    assert.ok(etag, 'blobs carry an ETag');
    assert.equal((await reg.request('GET', path)).headers.get('etag'), etag);
    assert.equal((await reg.request('GET', path, { headers: { 'if-none-match': etag } })).status, 304);
  });

  it('manifests by tag and by digest: GET and HEAD 200 with the stored Content-Type, Docker-Content-Digest and the exact bytes', async () => {
    await pushed();
    for (const ref of ['v1', img.manifest.digest]) {
      const get = await reg.request('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: MT.ociManifest } });
      assert.equal(get.status, 200, ref);
      assert.equal(get.headers.get('content-type'), MT.ociManifest, ref);
      assert.equal(get.headers.get('docker-content-digest'), img.manifest.digest, ref);
      assertBytes(get.body, img.manifest.bytes, `${ref}: stored byte-exact, unknown fields included`);
      const head = await reg.request('HEAD', `/v2/${repo}/manifests/${ref}`, { headers: { accept: MT.ociManifest } });
      assert.equal(head.status, 200, ref);
      assert.equal(head.headers.get('content-type'), MT.ociManifest, ref);
      assert.equal(head.headers.get('docker-content-digest'), img.manifest.digest, ref);
      assert.equal(head.headers.get('content-length'), String(img.manifest.size), ref);
    }
  });

  it('an invalid tag is 404 with the error envelope', distributionFails('answers an invalid tag with a text/plain 404'), async () => {
    await pushed();
    const accept = { accept: MT.ociManifest };
    assert.equal((await reg.request('HEAD', `/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`, { headers: accept })).status, 404);
    assertError(await reg.request('GET', `/v2/${repo}/manifests/.INVALID_MANIFEST_NAME`, { headers: accept }), 404);
  });

  it('an unknown tag or digest is 404 MANIFEST_UNKNOWN, an unknown repository 404 NAME_UNKNOWN', async () => {
    await pushed();
    const accept = { accept: MT.ociManifest };
    assertError(await reg.request('GET', `/v2/${repo}/manifests/nope`, { headers: accept }), 404, 'MANIFEST_UNKNOWN');
    assertError(await reg.request('GET', `/v2/${repo}/manifests/${unknownDigest()}`, { headers: accept }), 404, 'MANIFEST_UNKNOWN');
    assertError(await reg.request('GET', `/v2/${repoName('none')}/manifests/v1`, { headers: accept }), 404, ['NAME_UNKNOWN', 'MANIFEST_UNKNOWN']);
  });

  it('a malformed digest reference is 400 with an OCI code or 404, never a 5xx', distributionFails('answers 500 to manifests/sha256:totallywrong'), async () => {
    await pushed();
    // The conformance suite sends this GET with a body.
    const headers = { 'content-type': MT.ociManifest, accept: MT.ociManifest };
    const got = await reg.request('GET', `/v2/${repo}/manifests/sha256:totallywrong`, { raw: true, headers, body: 'blablabla' });
    assertError(got, [400, 404], ['DIGEST_INVALID', 'MANIFEST_UNKNOWN', 'MANIFEST_INVALID']);
    assert.ok([400, 404].includes((await reg.request('HEAD', `/v2/${repo}/manifests/sha256:totallywrong`)).status));
  });

  it('a Docker schema 2 manifest and manifest list are accepted and served with their media types', async () => {
    await pushed();
    const docker = image({ docker: true, layers: 2 });
    await pushImage(reg, repo, docker, 'docker');
    const list = index({ docker: true, manifests: [docker.manifest] });
    await pushManifest(reg, repo, 'docker-list', list);
    for (const [ref, m] of [['docker', docker.manifest], ['docker-list', list], [list.digest, list]] as const) {
      const get = await reg.request('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept: m.mediaType } });
      assert.equal(get.status, 200, ref);
      assert.equal(get.headers.get('content-type'), m.mediaType, ref);
      assertBytes(get.body, m.bytes, ref);
    }
  });

  it('Accept negotiation: an Accept listing the stored type is answered with it', async () => {
    await pushed();
    const idx = index({ manifests: [img.manifest] });
    await pushManifest(reg, repo, 'index', idx);
    const accepts = [CLIENT_ACCEPT, `${MT.dockerManifest}, ${MT.ociIndex};q=0.9, ${MT.ociManifest};q=0.8`];
    for (const accept of accepts) {
      for (const [ref, m] of [['v1', img.manifest], ['index', idx]] as const) {
        const get = await reg.request('GET', `/v2/${repo}/manifests/${ref}`, { headers: { accept } });
        assert.equal(get.status, 200, `${ref} with ${accept}`);
        assert.equal(get.headers.get('content-type'), m.mediaType, `${ref} with ${accept}`);
        assertBytes(get.body, m.bytes);
      }
    }
  });

  it('repository names with several slash-separated components work on every route', async () => {
    const deep = `${repoName('deep')}/b/c`;
    const deepImg = image();
    await pushImage(reg, deep, deepImg, 'latest');
    const got = await reg.request('GET', `/v2/${deep}/manifests/latest`, { headers: { accept: MT.ociManifest } });
    assertBytes(got.body, deepImg.manifest.bytes);
    assertBytes((await reg.request('GET', `/v2/${deep}/blobs/${deepImg.layers[0]!.digest}`)).body, deepImg.layers[0]!.bytes);
    assert.deepEqual((await reg.request('GET', `/v2/${deep}/tags/list`)).json, { name: deep, tags: ['latest'] });
    // 255 characters is the longest name the Docker registry API allows ("MUST be less than 256").
    const prefix = repoName('long');
    const longest = `${prefix}/${'x'.repeat(255 - prefix.length - 1)}`;
    await pushImage(reg, longest, image(), 'latest');
    assert.deepEqual((await reg.request('GET', `/v2/${longest}/tags/list`)).json, { name: longest, tags: ['latest'] });
  });
});

describe('OCI push', () => {
  const reg = useRegistry();
  const repo = repoName('push');
  const blobUrl = (d: string) => `/v2/${repo}/blobs/${d}`;
  const readBlob = async (d: string) => (await reg.request('GET', blobUrl(d))).body;

  it('monolithic POST ?digest= with the body answers 201 with the blob Location; the blob is then readable', distributionFails('ignores the body of POST ?digest= (202)'), async () => {
    const blob = content(random(300));
    const res = await reg.request('POST', withQuery(`/v2/${repo}/blobs/uploads/`, { digest: blob.digest }), { body: blob.bytes, headers: octets });
    assert.equal(res.status, 201);
    assert.equal(location(reg, res), blobUrl(blob.digest));
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assertBytes(await readBlob(blob.digest), blob.bytes);
  });

  it('POST then PUT ?digest= with the body: 202 with an upload Location, then 201 with the blob Location', async () => {
    const blob = content(random(500));
    const post = await reg.request('POST', `/v2/${repo}/blobs/uploads/`);
    assert.equal(post.status, 202);
    assert.ok(location(reg, post).startsWith(`/v2/${repo}/blobs/uploads/`));
    assert.equal((await reg.request('HEAD', blobUrl(blob.digest))).status, 404, 'nothing is visible before the PUT');
    const put = await reg.request('PUT', withQuery(location(reg, post), { digest: blob.digest }), { body: blob.bytes, headers: octets });
    assert.equal(put.status, 201);
    assert.equal(location(reg, put), blobUrl(blob.digest));
    assert.equal(put.headers.get('docker-content-digest'), blob.digest);
    assertBytes(await readBlob(blob.digest), blob.bytes);
  });

  it('a streamed PATCH without Content-Range answers 202 with Range and Location; PUT ?digest= without a body completes it', async () => {
    const blob = content(random(42));
    const patch = await patchChunk(reg, await startUpload(reg, repo), blob.bytes);
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get('range'), '0-41');
    const put = await reg.request('PUT', withQuery(location(reg, patch), { digest: blob.digest }), { headers: octets });
    assert.equal(put.status, 201);
    assert.equal(location(reg, put), blobUrl(blob.digest));
    assertBytes(await readBlob(blob.digest), blob.bytes);
  });

  it('a streamed PATCH with Transfer-Encoding: chunked and no Content-Length (podman) is accepted', async () => {
    const blob = content(random(3000));
    const patch = await reg.request('PATCH', await startUpload(reg, repo), { raw: true, chunked: true, body: blob.bytes, headers: octets });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get('range'), '0-2999');
    assert.equal((await reg.request('PUT', withQuery(location(reg, patch), { digest: blob.digest }))).status, 201);
    assertBytes(await readBlob(blob.digest), blob.bytes);
  });

  it('chunks with Content-Range: 202 with Range 0-<last> and Location, status GET 204, final PUT ?digest= 201', async () => {
    const blob = content(random(100));
    let at = await startUpload(reg, repo);
    for (const [start, end] of [[0, 21], [22, 41]] as const) {
      const res = await patchChunk(reg, at, blob.bytes.subarray(start, end + 1), start);
      assert.equal(res.status, 202);
      assert.equal(res.headers.get('range'), `0-${end}`);
      at = location(reg, res);
      const status = await reg.request('GET', at);
      assert.equal(status.status, 204);
      assert.equal(status.headers.get('range'), `0-${end}`);
      at = location(reg, status);
    }
    // The final chunk may travel in the closing PUT.
    const put = await reg.request('PUT', withQuery(at, { digest: blob.digest }), { body: blob.bytes.subarray(42), headers: { ...octets, 'content-range': '42-99' } });
    assert.equal(put.status, 201);
    assert.equal(location(reg, put), blobUrl(blob.digest));
    assertBytes(await readBlob(blob.digest), blob.bytes);
  });

  it('an out-of-order chunk is 416 with the current Range', distributionFails('appends out-of-order chunks (202)'), async () => {
    const blob = content(random(60));
    assertError(await patchChunk(reg, await startUpload(reg, repo), blob.bytes.subarray(22, 42), 22), 416);
    const at = await startUpload(reg, repo);
    const first = await patchChunk(reg, at, blob.bytes.subarray(0, 22), 0);
    assert.equal(first.status, 202);
    for (const [start, end] of [[30, 49], [10, 29]] as const) {
      const res = await patchChunk(reg, location(reg, first), blob.bytes.subarray(start, end + 1), start);
      assertError(res, 416);
      assert.equal(res.headers.get('range'), '0-21', `${start}-${end}`);
    }
  });

  it('a retry of the previous chunk to the POST Location is 416 and the session survives', distributionFails('bakes the offset into the upload URL (404 on the POST Location)'), async () => {
    const blob = content(random(42));
    const posted = await startUpload(reg, repo);
    assert.equal((await patchChunk(reg, posted, blob.bytes.subarray(0, 22), 0)).status, 202);
    const retry = await patchChunk(reg, posted, blob.bytes.subarray(0, 22), 0);
    assertError(retry, 416);
    assert.equal(retry.headers.get('range'), '0-21');
    const status = await reg.request('GET', posted);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-21');
    const second = await patchChunk(reg, location(reg, status), blob.bytes.subarray(22), 22);
    assert.equal(second.status, 202);
    assert.equal((await reg.request('PUT', withQuery(location(reg, second), { digest: blob.digest }))).status, 201);
    assertBytes(await readBlob(blob.digest), blob.bytes);
  });

  it('a digest mismatch at the final PUT is 400 DIGEST_INVALID and stores nothing under either digest', async () => {
    const sent = content(random(64));
    const claimed = content(random(64));
    const patch = await patchChunk(reg, await startUpload(reg, repo), sent.bytes, 0);
    assertError(await reg.request('PUT', withQuery(location(reg, patch), { digest: claimed.digest })), 400, 'DIGEST_INVALID');
    const mono = await reg.request('PUT', withQuery(await startUpload(reg, repo), { digest: claimed.digest }), { body: sent.bytes, headers: octets });
    assertError(mono, 400, 'DIGEST_INVALID');
    for (const d of [sent.digest, claimed.digest]) assert.equal((await reg.request('HEAD', blobUrl(d))).status, 404);
  });

  it('cancel: DELETE of an upload answers 204, then the upload is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const patch = await patchChunk(reg, await startUpload(reg, repo), random(10), 0);
    const at = location(reg, patch);
    assert.equal((await reg.request('DELETE', at)).status, 204);
    assertError(await reg.request('GET', at), 404, 'BLOB_UPLOAD_UNKNOWN');
    assertError(await patchChunk(reg, at, random(10), 10), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('cross-repository mount of a blob known in `from`: 201 with Location exactly /v2/<dst>/blobs/<digest>', async () => {
    const src = repoName('mount-src');
    const dst = repoName('mount-dst');
    const blob = await pushBlob(reg, src, content(random(200)));
    const res = await reg.request('POST', `/v2/${dst}/blobs/uploads/?${new URLSearchParams({ mount: blob.digest, from: src })}`);
    assert.equal(res.status, 201);
    assert.equal(location(reg, res), `/v2/${dst}/blobs/${blob.digest}`);
    assert.equal(res.headers.get('docker-content-digest'), blob.digest);
    assertBytes((await reg.request('GET', `/v2/${dst}/blobs/${blob.digest}`)).body, blob.bytes);
  });

  it('a mount of an unknown blob, from a repository without it, or without `from` is 202 with a usable upload', async () => {
    const src = repoName('mount-src');
    const dst = repoName('mount-dst');
    const known = await pushBlob(reg, repoName('elsewhere'), content(random(100)));
    await pushBlob(reg, src, content(random(10)));
    for (const query of [{ mount: unknownDigest(), from: src }, { mount: known.digest, from: src }, { mount: known.digest }] as Record<string, string>[]) {
      const res = await reg.request('POST', `/v2/${dst}/blobs/uploads/?${new URLSearchParams(query)}`);
      assert.equal(res.status, 202, JSON.stringify(query));
      assert.ok(location(reg, res).startsWith(`/v2/${dst}/blobs/uploads/`), location(reg, res));
    }
    const blob = content(random(77));
    const res = await reg.request('POST', `/v2/${dst}/blobs/uploads/?${new URLSearchParams({ mount: blob.digest, from: src })}`);
    assert.equal((await reg.request('PUT', withQuery(location(reg, res), { digest: blob.digest }), { body: blob.bytes, headers: octets })).status, 201);
    assert.equal((await reg.request('HEAD', `/v2/${dst}/blobs/${known.digest}`)).status, 404, 'nothing was mounted');
  });

  it('manifest PUT by tag and by digest: 201 with Location and Docker-Content-Digest of the exact bytes, stored byte-exact', async () => {
    const img = image({ layers: 2 });
    const byTag = await pushImage(reg, repo, img, 'tagged');
    assert.equal(byTag.headers.get('docker-content-digest'), img.manifest.digest);
    assert.ok(byTag.headers.get('location'));
    assertBytes((await reg.request('GET', location(reg, byTag), { headers: { accept: MT.ociManifest } })).body, img.manifest.bytes);
    // Unknown fields, in descriptors and at the top, a `data` field, no mediaType and no layers: all kept as sent.
    const config = img.config;
    const doc = { schemaVersion: 2, config: { mediaType: config.mediaType, digest: config.digest, size: config.size, data: config.bytes.toString('base64'), newUnspecifiedField: 'x' }, layers: [], 'x-unknown': { nested: [1, 'two', null] } };
    const odd = content(Buffer.concat([serialise(doc), Buffer.from('\n\n')]), MT.ociManifest);
    const byDigest = await pushManifest(reg, repo, odd.digest, odd);
    assert.equal(byDigest.headers.get('docker-content-digest'), odd.digest);
    assert.equal(location(reg, byDigest), `/v2/${repo}/manifests/${odd.digest}`);
    const got = await reg.request('GET', `/v2/${repo}/manifests/${odd.digest}`, { headers: { accept: MT.ociManifest } });
    assert.equal(got.headers.get('content-type'), MT.ociManifest, 'without a mediaType field the request Content-Type names it');
    assertBytes(got.body, odd.bytes);
  });

  it('a manifest referencing a blob or manifest the repository lacks is 400 MANIFEST_BLOB_UNKNOWN', async () => {
    const elsewhere = repoName('elsewhere');
    const img = image({ layers: 2 });
    await pushBlob(reg, repo, img.config);
    await pushBlob(reg, repo, img.layers[0]!);
    await pushBlob(reg, elsewhere, img.layers[1]!);
    assertError(await reg.request('PUT', `/v2/${repo}/manifests/missing`, { body: img.manifest.bytes, headers: { 'content-type': MT.ociManifest } }), 400, 'MANIFEST_BLOB_UNKNOWN');
    const other = image();
    await pushImage(reg, elsewhere, other);
    const idx = index({ manifests: [other.manifest] });
    assertError(await reg.request('PUT', `/v2/${repo}/manifests/missing`, { body: idx.bytes, headers: { 'content-type': MT.ociIndex } }), 400, 'MANIFEST_BLOB_UNKNOWN');
    assertError(await reg.request('GET', `/v2/${repo}/manifests/missing`, { headers: { accept: MT.ociManifest } }), 404, 'MANIFEST_UNKNOWN');
  });

  it('a manifest that is not valid JSON or not a manifest is 400 MANIFEST_INVALID', async () => {
    for (const body of ['{"schemaVersion": ', 'not json at all', '[]', '"a string"']) {
      assertError(await reg.request('PUT', `/v2/${repo}/manifests/bad`, { body, headers: { 'content-type': MT.ociManifest } }), 400, 'MANIFEST_INVALID');
    }
  });

  it('manifests up to 4 MB are accepted; one over 4 MiB is 413 or 400 with a code', async () => {
    const base = image();
    for (const blob of [base.config, ...base.layers]) await pushBlob(reg, repo, blob);
    const sized = (n: number) => image({ config: base.config, layers: base.layers, annotations: { pad: 'x'.repeat(n) } }).manifest;
    const fits = sized(4_000_000 - 1000);
    await pushManifest(reg, repo, 'large', fits);
    assertBytes((await reg.request('GET', `/v2/${repo}/manifests/${fits.digest}`, { headers: { accept: MT.ociManifest } })).body, fits.bytes);
    const huge = sized(4 * 1024 * 1024);
    assertError(await reg.request('PUT', `/v2/${repo}/manifests/huge`, { body: huge.bytes, headers: { 'content-type': MT.ociManifest } }), [400, 413], ['MANIFEST_INVALID', 'SIZE_INVALID']);
    assert.equal((await reg.request('HEAD', `/v2/${repo}/manifests/${huge.digest}`)).status, 404);
  });

  it('a manifest PUT by a digest other than that of its bytes is 400 DIGEST_INVALID', async () => {
    const img = image();
    for (const blob of [img.config, ...img.layers]) await pushBlob(reg, repo, blob);
    const wrong = unknownDigest();
    assertError(await reg.request('PUT', `/v2/${repo}/manifests/${wrong}`, { body: img.manifest.bytes, headers: { 'content-type': MT.ociManifest } }), 400, 'DIGEST_INVALID');
    for (const d of [wrong, img.manifest.digest]) assert.equal((await reg.request('HEAD', `/v2/${repo}/manifests/${d}`)).status, 404);
  });

  it('a manifest with `subject` answers 201 with OCI-Subject, also when the subject does not exist', distributionFails('sends no OCI-Subject'), async () => {
    const subject = image();
    await pushImage(reg, repo, subject, 'subject');
    const dangling = image();
    for (const s of [subject.manifest, dangling.manifest]) {
      const referrer = image({ artifactType: 'application/vnd.spec.signature', subject: s });
      const res = await pushImage(reg, repo, referrer);
      assert.equal(res.headers.get('oci-subject'), s.digest);
    }
    const idx = index({ manifests: [subject.manifest], subject: dangling.manifest, artifactType: 'application/vnd.spec.bundle' });
    assert.equal((await pushManifest(reg, repo, idx.digest, idx)).headers.get('oci-subject'), dangling.manifest.digest);
  });
});
