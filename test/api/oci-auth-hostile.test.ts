import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random } from '../helpers/bytes.ts';
import { heldRequest } from '../helpers/raw-http.ts';
import {
  MT, assertBytes, assertEnvelope, assertError, basic, content, distributionFails, image, location, once, parseChallenge, patchChunk, principalToken,
  pushImage, repoName, startUpload, useRegistry, withQuery, type Auth, type OciResponse, type Registry,
} from '../helpers/oci-http.ts';

// Auth for the tools people use (issue 13, item 5) and hostile input on every /v2 route.

const octets = { 'content-type': 'application/octet-stream' };
const accept = { accept: MT.ociManifest };
const EMPTY_BASIC: Auth = { header: 'Basic Og==' };
/** Appends a query without encoding it (withQuery would percent-encode a hostile value). */
const rawQuery = (path: string, query: string) => `${path}${path.includes('?') ? '&' : '?'}${query}`;

/** Asserts a 401 UNAUTHORIZED with a Bearer challenge at `<registry>/v2/token`; returns its parameters. */
function bearerChallenge(reg: Registry, res: OciResponse): Record<string, string> {
  assertError(res, 401, 'UNAUTHORIZED');
  const { scheme, params } = parseChallenge(res.headers.get('www-authenticate'));
  assert.equal(scheme, 'Bearer');
  assert.equal(params.realm, `${reg.url}/v2/token`, 'an absolute realm URL');
  assert.ok(params.service, 'a service parameter');
  return params;
}

/** GET the token endpoint; asserts 200 and the Docker token response fields, returns the token. */
async function tokenFor(reg: Registry, scope: string, auth: Auth): Promise<string> {
  const challenge = bearerChallenge(reg, await reg.request('GET', '/v2/', { auth: 'anonymous' }));
  const res = await reg.request('GET', `/v2/token?${new URLSearchParams({ service: challenge.service!, scope })}`, { auth });
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(typeof res.json.token, 'string');
  assert.equal(typeof res.json.access_token, 'string');
  assert.ok(Number.isInteger(res.json.expires_in) && res.json.expires_in > 0, 'expires_in in seconds');
  assert.ok(!Number.isNaN(Date.parse(res.json.issued_at)), 'issued_at is a date');
  return res.json.token;
}

describe('OCI auth', () => {
  const reg = useRegistry();
  const repo = repoName('auth');
  const img = image();
  const pushed = once(() => pushImage(reg, repo, img, 'v1'));
  const pulls = async (auth: Auth) => {
    const [manifest, blob] = [`/v2/${repo}/manifests/v1`, `/v2/${repo}/blobs/${img.layers[0]!.digest}`];
    for (const [method, path] of [['GET', manifest], ['HEAD', blob], ['GET', blob], ['GET', `/v2/${repo}/tags/list`]] as const) {
      assert.equal((await reg.request(method, path, { auth, headers: accept })).status, 200, `${method} ${path}`);
    }
    assertBytes((await reg.request('GET', manifest, { auth, headers: accept })).body, img.manifest.bytes);
  };

  it('HTTP Basic with any username and an imgsrv API token as password pushes', distributionFails('checks the htpasswd user name'), async () => {
    for (const user of ['ci', 'someone-else', 'x@example.com']) await pushImage(reg, repoName('basic'), image(), 'v1', { auth: { basic: [user, reg.password] } });
  });

  it('wrong or malformed credentials are 401 UNAUTHORIZED with a challenge, on /v2/ (a failed login) and on push', async () => {
    const bad: Auth[] = [{ basic: ['ci', 'wrong'] }, { header: 'Basic !!!not-base64' }, { bearer: 'garbage' }, { header: 'Digest username="ci"' }];
    for (const auth of bad) {
      for (const [method, path] of [['GET', '/v2/'], ['POST', `/v2/${repo}/blobs/uploads/`]] as const) {
        const res = await reg.request(method, path, { auth });
        assertError(res, 401, 'UNAUTHORIZED');
        assert.ok(res.headers.get('www-authenticate'), `${method} ${path}`);
      }
    }
  });

  it('without credentials, or with Basic Og== (empty user and password), GET /v2/ is 401 with a Bearer challenge', distributionFails('challenges with Basic (htpasswd)'), async () => {
    for (const auth of ['anonymous', EMPTY_BASIC] as const) bearerChallenge(reg, await reg.request('GET', '/v2/', { auth }));
  });

  it('anonymous pull works without Authorization and with Basic Og==', distributionFails('has no anonymous pull with htpasswd auth'), async () => {
    await pushed();
    await pulls('anonymous');
    await pulls(EMPTY_BASIC);
  });

  it('anonymous push and delete are 401 with challenge Bearer realm, service and scope="repository:NAME:pull,push"', distributionFails('challenges with Basic (htpasswd)'), async () => {
    await pushed();
    for (const auth of ['anonymous', EMPTY_BASIC] as const) {
      const target = repoName('anon');
      const post = bearerChallenge(reg, await reg.request('POST', `/v2/${target}/blobs/uploads/`, { auth }));
      assert.equal(post.scope, `repository:${target}:pull,push`);
      const put = await reg.request('PUT', `/v2/${repo}/manifests/v2`, { auth, body: img.manifest.bytes, headers: { 'content-type': MT.ociManifest } });
      assert.equal(bearerChallenge(reg, put).scope, `repository:${repo}:pull,push`);
      bearerChallenge(reg, await reg.request('DELETE', `/v2/${repo}/manifests/${img.manifest.digest}`, { auth }));
    }
    assert.equal((await reg.request('GET', `/v2/${repo}/manifests/${img.manifest.digest}`, { headers: accept })).status, 200);
  });

  it('the token endpoint trades Basic credentials for a token valid for that repository and those actions only', distributionFails('has no token endpoint'), async () => {
    await pushed();
    const mine = repoName('token');
    const other = repoName('token-other');
    const token = await tokenFor(reg, `repository:${mine}:pull,push`, { basic: ['anyone', reg.password] });
    await pushImage(reg, mine, image(), 'v1', { auth: { bearer: token } });
    const elsewhere = bearerChallenge(reg, await reg.request('POST', `/v2/${other}/blobs/uploads/`, { auth: { bearer: token } }));
    assert.equal(elsewhere.scope, `repository:${other}:pull,push`);
    const pullOnly = await tokenFor(reg, `repository:${mine}:pull`, 'writer');
    assert.equal((await reg.request('GET', `/v2/${mine}/manifests/v1`, { auth: { bearer: pullOnly }, headers: accept })).status, 200);
    bearerChallenge(reg, await reg.request('POST', `/v2/${mine}/blobs/uploads/`, { auth: { bearer: pullOnly } }));
  });

  it('without credentials the token endpoint grants pull only', distributionFails('has no token endpoint'), async () => {
    await pushed();
    const token = await tokenFor(reg, `repository:${repo}:pull,push`, 'anonymous');
    assert.equal((await reg.request('GET', `/v2/${repo}/manifests/v1`, { auth: { bearer: token }, headers: accept })).status, 200);
    bearerChallenge(reg, await reg.request('POST', `/v2/${repo}/blobs/uploads/`, { auth: { bearer: token } }));
  });

  it('a principal without content-writer pulls but cannot push, with Basic or with a token; with the role it can', distributionFails('has no imgsrv /v1 auth API'), async () => {
    await pushed();
    const reader = await principalToken(reg, []);
    await pulls({ basic: ['reader', reader] });
    const refused = await reg.request('POST', `/v2/${repoName('reader')}/blobs/uploads/`, { auth: { basic: ['reader', reader] } });
    assertError(refused, [401, 403], ['UNAUTHORIZED', 'DENIED']);
    const token = await tokenFor(reg, `repository:${repo}:pull,push`, { basic: ['reader', reader] });
    assertError(await reg.request('POST', `/v2/${repo}/blobs/uploads/`, { auth: { bearer: token } }), [401, 403], ['UNAUTHORIZED', 'DENIED']);
    const writer = await principalToken(reg, ['content-writer']);
    await pushImage(reg, repoName('writer'), image(), 'v1', { auth: { basic: ['writer', writer] } });
  });
});

describe('OCI auth with IMGSRV_OCI_ANONYMOUS_PULL=false', () => {
  const reg = useRegistry({ env: { IMGSRV_OCI_ANONYMOUS_PULL: 'false' } });
  const repo = repoName('private');
  const img = image();
  const pushed = once(() => pushImage(reg, repo, img, 'v1'));

  it('anonymous pull is refused with 401 and a challenge; credentials still pull', async () => {
    await pushed();
    for (const auth of ['anonymous', EMPTY_BASIC] as const) {
      for (const path of [`/v2/${repo}/manifests/v1`, `/v2/${repo}/blobs/${img.layers[0]!.digest}`, `/v2/${repo}/tags/list`]) {
        const res = await reg.request('GET', path, { auth, headers: accept });
        assertError(res, 401, 'UNAUTHORIZED');
        assert.ok(res.headers.get('www-authenticate'), path);
      }
    }
    assertBytes((await reg.request('GET', `/v2/${repo}/manifests/v1`, { headers: accept })).body, img.manifest.bytes);
  });

  it('the pull challenge is Bearer with scope repository:NAME:pull, and an anonymous token does not pull', distributionFails('has no token endpoint'), async () => {
    await pushed();
    const challenge = bearerChallenge(reg, await reg.request('GET', `/v2/${repo}/manifests/v1`, { auth: 'anonymous', headers: accept }));
    assert.equal(challenge.scope, `repository:${repo}:pull`);
    const res = await reg.request('GET', `/v2/token?${new URLSearchParams({ service: challenge.service!, scope: challenge.scope })}`, { auth: 'anonymous' });
    if (res.status === 200) bearerChallenge(reg, await reg.request('GET', `/v2/${repo}/manifests/v1`, { auth: { bearer: res.json.token }, headers: accept }));
    else assertError(res, 401, 'UNAUTHORIZED');
  });
});

describe('OCI hostile input: never a 5xx, always the error envelope', () => {
  const reg = useRegistry();
  const repo = repoName('hostile');
  const img = image();
  const pushed = once(() => pushImage(reg, repo, img, 'v1'));
  const good = `sha256:${'a'.repeat(64)}`;
  const badDigests = ['sha256:totallywrong', `sha256:${'g'.repeat(64)}`, `sha256:${'A'.repeat(64)}`, 'sha256:abc', `sha256:${'a'.repeat(65)}`, `sha512:${'a'.repeat(64)}`, `md5:${'a'.repeat(32)}`, 'sha256:..%2F..%2Fetc'];

  it('malformed digests on blob, manifest, referrers, upload and mount routes are 400 DIGEST_INVALID or 404', distributionFails('answers 500 or a text/plain 404 to malformed digests'), async () => {
    await pushed();
    for (const d of badDigests) {
      const answers: [string, () => Promise<OciResponse>][] = [
        ['GET blob', () => reg.request('GET', `/v2/${repo}/blobs/${d}`)],
        ['DELETE blob', () => reg.request('DELETE', `/v2/${repo}/blobs/${d}`)],
        ['GET manifest', () => reg.request('GET', `/v2/${repo}/manifests/${d}`, { headers: accept })],
        ['PUT manifest', () => reg.request('PUT', `/v2/${repo}/manifests/${d}`, { body: img.manifest.bytes, headers: { 'content-type': MT.ociManifest } })],
        ['DELETE manifest', () => reg.request('DELETE', `/v2/${repo}/manifests/${d}`)],
        ['GET referrers', () => reg.request('GET', `/v2/${repo}/referrers/${d}`)],
        ['POST ?digest=', () => reg.request('POST', `/v2/${repo}/blobs/uploads/?digest=${d}`, { body: 'x', headers: octets })],
        ['POST ?mount=', () => reg.request('POST', `/v2/${repo}/blobs/uploads/?mount=${d}&from=${repo}`)],
        ['PUT upload ?digest=', async () => reg.request('PUT', rawQuery(await startUpload(reg, repo), `digest=${d}`), { body: 'x', headers: octets })],
      ];
      for (const [what, answer] of answers) {
        const res = await answer();
        if (what.startsWith('POST ?mount')) assert.ok([202, 400].includes(res.status), `${what} ${d}: ${res.status}`);
        // A 404 may carry any code (an encoded slash can make the path name another repository).
        else if (res.status === 404) assertError(res, 404);
        else assertError(res, 400, ['DIGEST_INVALID', 'MANIFEST_INVALID', 'NAME_INVALID', 'UNSUPPORTED']);
      }
      for (const route of ['blobs', 'manifests', 'referrers']) assert.ok([400, 404].includes((await reg.request('HEAD', `/v2/${repo}/${route}/${d}`)).status), `HEAD ${route} ${d}`);
    }
  });

  it('huge, negative, reversed and malformed Content-Range is 416 or 400 and leaves the session intact', distributionFails('accepts chunks whatever their Content-Range says'), async () => {
    const blob = content(random(20));
    const first = await patchChunk(reg, await startUpload(reg, repo), blob.bytes.subarray(0, 10), 0);
    const at = location(reg, first);
    const ranges = ['99999999999999999999-100000000000000000009', `10-${2 ** 53}`, '-1-8', '19-10', 'ten-twenty', '10-', '10-19-29', '0x0a-0x13', '10-19, 20-29', '1e1-19'];
    for (const range of ranges) {
      assertError(await reg.request('PATCH', at, { body: blob.bytes.subarray(10), headers: { ...octets, 'content-range': range } }), [400, 416], ['BLOB_UPLOAD_INVALID', 'SIZE_INVALID', 'RANGE_INVALID']);
    }
    const short = await reg.request('PATCH', at, { body: blob.bytes.subarray(10, 15), headers: { ...octets, 'content-range': '10-19' } });
    assertError(short, [400, 416], ['BLOB_UPLOAD_INVALID', 'SIZE_INVALID', 'RANGE_INVALID']);
    const chunked = await reg.request('PATCH', at, { raw: true, chunked: true, body: random(15), headers: { ...octets, 'content-range': '10-19' } });
    assertError(chunked, [400, 416], ['BLOB_UPLOAD_INVALID', 'SIZE_INVALID', 'RANGE_INVALID']);
    const status = await reg.request('GET', at);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-9', 'refused chunks left nothing behind');
    const rest = await reg.request('PATCH', location(reg, status), { raw: true, chunked: true, body: blob.bytes.subarray(10), headers: { ...octets, 'content-range': '10-19' } });
    assert.equal(rest.status, 202, 'a chunk without Content-Length that matches its Content-Range is fine');
    assert.equal((await reg.request('PUT', withQuery(location(reg, rest), { digest: blob.digest }))).status, 201);
    assertBytes((await reg.request('GET', `/v2/${repo}/blobs/${blob.digest}`)).body, blob.bytes);
  });

  it('garbage JSON and wrong types in manifests are 400 with a manifest error code', async () => {
    const config = img.config;
    const bodies = [
      '{', '\u0000', random(64), `${'['.repeat(100_000)}${']'.repeat(100_000)}`, '{"schemaVersion":2e400}',
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: 'nope', layers: {} }),
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: 1, digest: 'sha256:zz', size: -1 }, layers: [null] }),
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, config: { mediaType: config.mediaType, digest: config.digest, size: config.size }, layers: 'all' }),
      JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [{ mediaType: MT.ociManifest, digest: 'sha256:zz', size: 'big' }] }),
    ];
    for (const body of bodies) {
      for (const type of [MT.ociManifest, MT.ociIndex]) {
        const res = await reg.request('PUT', `/v2/${repo}/manifests/garbage`, { body, headers: { 'content-type': type } });
        assertError(res, 400, ['MANIFEST_INVALID', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'SIZE_INVALID']);
      }
    }
    // Any media type, or none: never a 5xx (the request helper asserts that).
    for (const type of ['application/x-garbage', 'text/plain', '']) await reg.request('PUT', `/v2/${repo}/manifests/typed`, { body: img.manifest.bytes, headers: { 'content-type': type } });
  });

  it('JSON that is no manifest at all (null, {}, a number) is 400 MANIFEST_INVALID', distributionFails('answers 500 to the manifests null and {}'), async () => {
    for (const body of ['null', '{}', '42', 'true']) {
      for (const type of [MT.ociManifest, MT.ociIndex]) assertError(await reg.request('PUT', `/v2/${repo}/manifests/garbage`, { body, headers: { 'content-type': type } }), 400, 'MANIFEST_INVALID');
    }
  });

  it('over-long and invalid repository names and tags are 400 or 404', distributionFails('answers 500 or a text/plain 404 to invalid names'), async () => {
    const names = ['UPPER/case', 'a//b', '-lead', 'trail-', 'a..b', '_x', 'a/./b', 'a'.repeat(256), `spec/${'b'.repeat(251)}`, `${'a/'.repeat(200)}a`];
    for (const name of names) {
      for (const [method, path] of [['GET', `/v2/${name}/tags/list`], ['GET', `/v2/${name}/manifests/v1`], ['POST', `/v2/${name}/blobs/uploads/`], ['GET', `/v2/${name}/blobs/${good}`]] as const) {
        assertError(await reg.request(method, path, { raw: true, headers: accept }), [400, 404], ['NAME_INVALID', 'NAME_UNKNOWN', 'MANIFEST_UNKNOWN', 'BLOB_UNKNOWN']);
      }
    }
    const untagged = repoName('untagged');
    await pushImage(reg, untagged, img);
    for (const tag of ['t'.repeat(129), '-lead', '.dot', 'a%20b', 'a:b', '%2e%2e']) {
      const put = await reg.request('PUT', `/v2/${untagged}/manifests/${tag}`, { raw: true, body: img.manifest.bytes, headers: { 'content-type': MT.ociManifest } });
      if (put.status === 404) assertError(put, 404);
      else assertError(put, 400, ['MANIFEST_INVALID', 'NAME_INVALID', 'DIGEST_INVALID', 'TAG_INVALID']);
    }
    assert.deepEqual((await reg.request('GET', `/v2/${untagged}/tags/list`)).json.tags ?? [], [], 'no invalid tag was stored');
  });

  it('path traversal and NUL bytes in paths are 400 or 404 with the envelope', distributionFails('redirects dot segments (301) and answers text/plain 404s'), async () => {
    const paths = [
      '/v2/../x', '/v2/../v1/auth/principals', `/v2/${repo}/../../etc/passwd/tags/list`, '/v2/%2e%2e/tags/list', `/v2/${repo}/blobs/..%2F..%2Fetc%2Fpasswd`,
      `/v2/${repo}/blobs/uploads/..%2f..%2fx`, `/v2/${repo}/blobs/uploads/../../../metadata.sqlite`, '/v2/a%00b/tags/list', `/v2/${repo}/manifests/v1%00`,
      `/v2/${repo}/blobs/${good}%00`, `/v2/${repo}/manifests/..%2f..%2fv1`, `/v2/${repo}%2Fx/tags/list`,
    ];
    for (const path of paths) assertError(await reg.request('GET', path, { raw: true, headers: accept }), [400, 404]);
  });

  it('unknown and foreign upload ids are 404 BLOB_UPLOAD_UNKNOWN or 400 on GET, PATCH, PUT and DELETE', async () => {
    const foreign = (await startUpload(reg, repoName('foreign'))).replace(/^\/v2\/spec\/foreign-[0-9a-f]+\//, `/v2/${repo}/`);
    const ids = ['00000000-0000-4000-8000-000000000000', 'abc', 'x'.repeat(2000)];
    for (const at of [...ids.map((id) => `/v2/${repo}/blobs/uploads/${id}`), foreign]) {
      for (const [method, opts] of [['GET', {}], ['PATCH', { body: random(4), headers: { ...octets, 'content-range': '0-3' } }], ['PUT', {}], ['DELETE', {}]] as const) {
        const target = method === 'PUT' ? withQuery(at, { digest: good }) : at;
        assertError(await reg.request(method, target, opts), [400, 404], ['BLOB_UPLOAD_UNKNOWN', 'BLOB_UPLOAD_INVALID']);
      }
    }
  });

  it('a second PATCH while one is in flight is refused with a 4xx and the upload holds exactly one chunk', distributionFails('accepts both PATCHes'), async () => {
    const [a, b] = [random(64 * 1024), random(64 * 1024)];
    const at = await startUpload(reg, repo);
    const headers = { ...octets, 'content-range': `0-${a.length - 1}`, 'content-length': a.length, authorization: basic(reg.user, reg.password) };
    const first = heldRequest(`${reg.url}${at}`, { method: 'PATCH', headers });
    await first.write(a.subarray(0, 1000));
    await new Promise((r) => setTimeout(r, 200));
    const second = reg.request('PATCH', at, { body: b, headers: { ...octets, 'content-range': `0-${b.length - 1}` } });
    await new Promise((r) => setTimeout(r, 200));
    first.end(a.subarray(1000));
    const [one, two] = await Promise.all([first.response, second]);
    assert.ok(!('error' in one), 'the first PATCH gets an answer');
    const statuses = [one.status, two.status].sort();
    assert.equal(statuses[0], 202, `one PATCH wins: ${statuses}`);
    assert.ok(statuses[1]! >= 400 && statuses[1]! < 500, `the other is refused with a 4xx: ${statuses}`);
    if (two.status >= 400) assertEnvelope('second PATCH', two);
    const won = one.status === 202 ? a : b;
    const status = await reg.request('GET', at);
    assert.equal(status.headers.get('range'), `0-${won.length - 1}`);
    assert.equal((await reg.request('PUT', withQuery(location(reg, status), { digest: content(won).digest }))).status, 201);
  });

  const routes = (upload: string) => [
    '/v2/', '/v2/_catalog', `/v2/${repo}/tags/list`, `/v2/${repo}/manifests/v1`, `/v2/${repo}/manifests/${img.manifest.digest}`, `/v2/${repo}/blobs/${img.config.digest}`,
    `/v2/${repo}/blobs/uploads/`, upload, `/v2/${repo}/referrers/${img.manifest.digest}`, '/v2/token', '/v2/nope/nope/nope', '/v2/x',
  ];

  it('HEAD on every route and a GET with a body never answer 5xx', async () => {
    await pushed();
    const all = routes(await startUpload(reg, repo));
    for (const path of all) await reg.request('HEAD', path, { raw: true });
    // The routes of the Docker registry API (imgsrv's own are also covered by the envelope test below).
    for (const path of all.slice(0, 8)) await reg.request('GET', path, { raw: true, body: 'blablabla', headers: { 'content-type': MT.ociManifest } });
    const res = await reg.request('GET', `/v2/${repo}/manifests/v1`, { raw: true, body: 'blablabla', headers: { 'content-type': MT.ociManifest, ...accept } });
    assertBytes(res.body, img.manifest.bytes, 'a body on GET is ignored');
  });

  it('unknown methods and unknown /v2 paths are 404 or 405 with the envelope', distributionFails('answers them with text/plain 404 and 405'), async () => {
    for (const path of routes(await startUpload(reg, repo))) {
      for (const method of ['OPTIONS', 'PROPFIND', 'TRACE']) await reg.request(method, path, { raw: true });
    }
    for (const path of ['/v2/nope/nope/nope', '/v2/x', `/v2/${repo}/blobs/uploads/%20`, `/v2/${repo}/nothing/here`]) assertError(await reg.request('GET', path, { raw: true }), [400, 404]);
    for (const path of routes(await startUpload(reg, repo)).slice(8)) await reg.request('GET', path, { raw: true, body: 'blablabla', headers: { 'content-type': MT.ociManifest } });
  });

  it('odd pagination parameters on tags/list and /v2/_catalog are 200 or 400', async () => {
    await pushed();
    for (const query of ['n=-1', 'n=abc', 'n=99999999999999999999', 'n=0', 'last=%00', 'n=1&last=', `last=${'z'.repeat(5000)}`, 'n=1&n=2']) {
      for (const path of [`/v2/${repo}/tags/list`, '/v2/_catalog']) {
        const res = await reg.request('GET', `${path}?${query}`);
        assert.ok(res.status === 200 || res.status === 400, `${path}?${query}: ${res.status}`);
      }
    }
  });
});
