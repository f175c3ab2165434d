import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMPOSE_ERRORS } from '../../src/domain/compose.ts';
import { COMPOSE_API, composeClient, type ComposeClient } from '../helpers/compose-api.ts';
import { principalToken } from '../helpers/principals.ts';
import { withStore } from '../helpers/store.ts';
import { useServer } from '../helpers/suite.ts';

const idOf = (code: string) => COMPOSE_ERRORS.find((e) => e.code === code)!.id;
const request = (over: Record<string, unknown> = {}) => ({ distribution: 'debian-12', image_request: { architecture: 'x86_64', image_type: 'guest-image' }, ...over });

/** The compose API without a build worker (IMGSRV_JOBS leaves compose out): composes stay pending. */
describe('compose API: requests, refusals with catalogue errors, status, cancel, errors, auth', () => {
  const ctx = useServer({ env: { IMGSRV_JOBS: 'ingest,publish', IMGSRV_MAX_JSON_BODY: '65536' } });
  const api = (): ComposeClient => composeClient(ctx.server);

  async function refused(body: unknown, status: number, code: string, reason: RegExp) {
    const res = await api().request('POST', '/compose', typeof body === 'string' ? { body, headers: { 'content-type': 'application/json' } } : { json: body });
    assert.equal(res.status, status, `${JSON.stringify(body).slice(0, 200)}: ${res.text}`);
    assert.equal(res.json.id, String(idOf(code)), res.text);
    assert.match(res.json.reason, reason);
  }

  it('queues a compose: 201 with its id and Location, then pending with the defaults of the imgsrv target', async () => {
    const posted = await api().post('/compose', {
      distribution: 'debian-12',
      image_requests: [
        { architecture: 'x86_64', image_type: 'guest-image', repositories: [{ rhsm: false, baseurl: 'http://mirror.invalid/debian' }] },
        { architecture: 'x86_64', image_type: 'incus-container', repositories: [{ rhsm: false, baseurl: 'http://mirror.invalid/debian' }] },
      ],
      customizations: { packages: ['tree', 'curl'], users: [{ name: 'alice', key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINrGKErMYi+MMUwuHaRAJmRLoIzRf2qD2dD5z0BTx/6x', groups: ['sudo'] }], filesystem: [{ mountpoint: '/', min_size: 4 * 1024 ** 3 }] },
    });
    assert.equal(posted.status, 201);
    assert.equal(posted.json.kind, 'ComposeId');
    assert.equal(posted.headers.get('location'), `${COMPOSE_API}/composes/${posted.json.id}`);
    const status = await api().get(`/composes/${posted.json.id}`);
    assert.equal(status.status, 200);
    assert.equal(status.json.status, 'pending');
    assert.equal(status.json.image_status.status, 'pending');
    assert.equal(status.json.image_statuses.length, 2);
    const options = status.json.image_status.upload_status.options;
    assert.equal(options.image, 'debian-12');
    assert.match(options.version, /^\d{8}\.\d{4}$/);
    assert.deepEqual([options.published, options.alias], [true, 'latest']);
    const manifests = await api().get(`/composes/${posted.json.id}/manifests`);
    assert.deepEqual(manifests.json.manifests.map((m: { image_type: string }) => m.image_type), ['guest-image', 'incus-container']);
    assert.deepEqual(manifests.json.manifests[0].packages, ['curl', 'tree']);
    assert.equal(manifests.json.manifests[0].rootMinSize, 4 * 1024 ** 3);
    assert.equal(manifests.json.manifests[0].mirror, 'http://mirror.invalid/debian');
    const head = await api().request('HEAD', `/composes/${posted.json.id}`);
    assert.deepEqual([head.status, head.text], [200, '']);
  });

  it('has no metadata before success (409), and empty logs that are not finished', async () => {
    const { json } = await api().post('/compose', request());
    const metadata = await api().get(`/composes/${json.id}/metadata`);
    assert.equal(metadata.status, 409);
    assert.equal(metadata.json.id, String(idOf('metadata_not_ready')));
    const logs = await api().get(`/composes/${json.id}/logs`);
    assert.deepEqual([logs.json.image_builds[0].lines, logs.json.next, logs.json.finished], [[], 0, false]);
    for (const q of ['after=-1', 'after=x', 'follow=yes']) assert.equal((await api().get(`/composes/${json.id}/logs?${q}`)).status, 400, q);
  });

  it('cancels a pending compose at once (failure, cancelled); a finished one answers 409; its log stream ends', async () => {
    const { json } = await api().post('/compose', request({ image_request: { architecture: 'x86_64', image_type: 'incus-container', upload_options: { image: 'cancelled', version: '1', publish: false } } }));
    const cancelled = await api().delete(`/composes/${json.id}`);
    assert.equal(cancelled.status, 200);
    assert.equal(cancelled.json.status, 'failure');
    assert.equal(cancelled.json.image_status.error.id, idOf('cancelled'));
    assert.equal(cancelled.json.image_status.upload_status.options.alias, undefined, 'no alias when not publishing');
    const again = await api().delete(`/composes/${json.id}`);
    assert.equal(again.status, 409);
    assert.equal(again.json.id, String(idOf('compose_finished')));
    const followed = await api().get(`/composes/${json.id}/logs?follow=true`);
    assert.deepEqual([followed.status, followed.headers.get('content-type'), followed.text], [200, 'text/plain; charset=utf-8', '']);
    const logs = await api().get(`/composes/${json.id}/logs`);
    assert.equal(logs.json.finished, true);
  });

  it('refuses what it does not build with the catalogue error that names it', async () => {
    await refused(request({ distribution: 'fedora-40' }), 400, 'unsupported_distribution', /"fedora-40" is not supported; supported: debian-12, debian-13/);
    await refused(request({ image_request: { architecture: 'aarch64', image_type: 'guest-image' } }), 400, 'unsupported_architecture', /"aarch64".*supported: x86_64/);
    await refused(request({ image_request: { architecture: 'x86_64', image_type: 'aws' } }), 400, 'unsupported_image_type', /"aws" is not supported \(an image type of the osbuild API.*supported: guest-image, incus-container/);
    await refused(request({ image_request: { architecture: 'x86_64', image_type: 'mystery' } }), 400, 'unsupported_image_type', /"mystery" is not supported; supported/);
    await refused(request({ koji: { server: 'https://koji.invalid', task_id: 1, name: 'n', version: '1', release: '1' } }), 400, 'invalid_request', /koji/);
    // Names of Object.prototype are not distributions or image types.
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const target = { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'proto' } };
      await refused(request({ distribution: name, image_request: target }), 400, 'unsupported_distribution', /is not supported; supported: debian-12, debian-13/);
      await refused(request({ image_request: { architecture: 'x86_64', image_type: name } }), 400, 'unsupported_image_type', /is not supported; supported: guest-image, incus-container/);
    }
  });

  it('refuses to cancel a compose whose images are being published (409)', async () => {
    const posted = await api().post('/compose', request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'publishing', version: '1' } } }));
    const id = posted.json.id as string;
    // As the worker leaves it once the images are stored: uploading, with its files.
    await withStore(ctx.server.dataDir, async (store) => {
      assert.ok(await store.moveCompose({ id, from: ['pending'], to: 'uploading', files: [{ kind: 'disk', digest: `sha256:${'a'.repeat(64)}`, size: 1 }], now: new Date() }));
    });
    const res = await api().delete(`/composes/${id}`);
    assert.deepEqual([res.status, res.json.id], [409, String(idOf('compose_publishing'))], res.text);
    assert.equal((await api().get(`/composes/${id}`)).json.image_status.status, 'uploading');
  });

  it('refuses a compose whose target version exists already (409), whoever made it', async () => {
    const { json } = await ctx.api.post('/v1/images', { name: 'taken' });
    assert.equal(json.name, 'taken');
    assert.equal((await ctx.api.post('/v1/images/taken/versions', { version: '1' })).status, 201);
    await refused(request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'taken', version: '1' } } }), 409, 'target_conflict', /already has a version 1/);
    assert.equal((await api().post('/compose', request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'taken', version: '2' } } }))).status, 201, 'a new version of it is fine');
  });

  it('refuses malformed requests with 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ ...request(), colour: 'blue' }, /unknown field "colour"/],
      [request({ customizations: { packages: ['tree'], hostname: 'x' } }), /customizations: unknown field "hostname"/],
      [request({ customizations: { packages: ['Bad_Name'] } }), /customizations\.packages\[0\].*not a Debian package name/],
      // apt reads a trailing "-" as remove and "+" as install.
      [request({ customizations: { packages: ['udev-'] } }), /customizations\.packages\[0\].*not a Debian package name/],
      [request({ customizations: { packages: ['tree', 'zlib1+'] } }), /customizations\.packages\[1\].*not a Debian package name/],
      [request({ customizations: { packages: [`a${'b'.repeat(128)}`] } }), /customizations\.packages\[0\].*2 to 128 characters/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', repositories: [{ baseurl: 'http://alice:s3cret@mirror.invalid/debian' }] } }), /repositories\[0\]\.baseurl.*credentials/],
      [request({ customizations: { packages: 'tree' } }), /customizations\.packages/],
      [request({ customizations: { filesystem: [{ mountpoint: '/var', min_size: 1 }] } }), /customizations\.filesystem\[0\]/],
      [request({ customizations: { filesystem: [{ mountpoint: '/', min_size: '1G' }] } }), /min_size/],
      [request({ customizations: { users: [{ name: 'Root!' }] } }), /customizations\.users\[0\]/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', repositories: [{ baseurl: 'ftp://x/debian' }] } }), /repositories\[0\]\.baseurl.*http/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', repositories: [{ baseurl: 'http://a/debian' }, { baseurl: 'http://b/debian' }] } }), /at most one/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', repositories: [{ rhsm: true, baseurl: 'http://a/debian' }] } }), /rhsm/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { region: 'eu-west-1' } } }), /upload_options: unknown field "region"/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'Bad Name' } } }), /upload_options\.image/],
      [request({ image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { publish: false, alias: 'latest' } } }), /alias needs publish/],
      [{ distribution: 'debian-12' }, /at least one image request/],
      [{ distribution: 'debian-12', image_requests: [{ architecture: 'x86_64', image_type: 'guest-image' }, { architecture: 'x86_64', image_type: 'incus-container', repositories: [{ baseurl: 'http://other/debian' }] }] }, /same repositories/],
      [[request()], /must be a JSON object/],
      ['{"distribution": "debian-12",', /not valid JSON/],
      ['{"distribution": "debian-12\\u0000"}', /U\+0000/],
      [`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`, /nested more than 32/],
    ];
    for (const [body, reason] of cases) await refused(body, 400, 'invalid_request', reason);
    const empty = await api().request('POST', '/compose', { headers: { 'content-type': 'application/json' } });
    assert.equal(empty.status, 400);
    const text = await api().request('POST', '/compose', { body: 'distribution=debian-12', headers: { 'content-type': 'text/plain' } });
    assert.deepEqual([text.status, text.json.id], [415, String(idOf('unsupported_media_type'))]);
    const big = await api().post('/compose', request({ customizations: { packages: Array.from({ length: 9000 }, (_, i) => `package-${i}`) } }));
    assert.deepEqual([big.status, big.json.id], [413, String(idOf('body_too_large'))]);
  });

  it('finds composes by UUID only: 400 for another id, 404 for an unknown one', async () => {
    const bad = await api().get('/composes/not-a-uuid');
    assert.deepEqual([bad.status, bad.json.id], [400, String(idOf('invalid_request'))]);
    const unknown = await api().get('/composes/123e4567-e89b-12d3-a456-426655440000');
    assert.deepEqual([unknown.status, unknown.json.id], [404, String(idOf('compose_not_found'))]);
    for (const path of ['/metadata', '/logs', '/manifests']) assert.equal((await api().get(`/composes/123e4567-e89b-12d3-a456-426655440000${path}`)).status, 404, path);
    assert.equal((await api().delete('/composes/123e4567-e89b-12d3-a456-426655440000')).status, 404);
  });

  it('lists the error catalogue in pages and serves each entry; unknown routes and methods are catalogue errors too', async () => {
    const all = await api().get('/errors');
    assert.deepEqual([all.json.kind, all.json.page, all.json.total, all.json.items.length], ['ErrorList', 0, COMPOSE_ERRORS.length, COMPOSE_ERRORS.length]);
    assert.deepEqual(all.json.items.map((e: { id: string }) => e.id), COMPOSE_ERRORS.map((e) => String(e.id)));
    const page = await api().get('/errors?page=1&size=10');
    assert.deepEqual(page.json.items.map((e: { id: string }) => e.id), COMPOSE_ERRORS.slice(10, 20).map((e) => String(e.id)));
    assert.equal(page.json.size, 10);
    assert.equal((await api().get('/errors?size=0')).status, 400);
    assert.equal((await api().get('/errors?page=x')).status, 400);
    const boot = await api().get(`/errors/${idOf('boot_test_failed')}`);
    assert.deepEqual([boot.status, boot.json.code, boot.json.reason], [200, `IMGSRV-COMPOSE-${idOf('boot_test_failed')}`, 'The built image did not boot']);
    const none = await api().get('/errors/999');
    assert.deepEqual([none.status, none.json.id], [404, String(idOf('error_not_found'))]);
    const route = await api().get('/nope');
    assert.deepEqual([route.status, route.json.id], [404, String(idOf('route_not_found'))]);
    const method = await api().request('PUT', '/compose', { json: request() });
    assert.deepEqual([method.status, method.json.id, method.headers.get('allow')], [405, String(idOf('method_not_allowed')), 'POST']);
  });

  it('needs a bearer token (401 with a challenge) of a content-writer (403); the document needs any valid token', async () => {
    const anonymous = await api().request('POST', '/compose', { json: request(), token: null });
    assert.deepEqual([anonymous.status, anonymous.json.id], [401, String(idOf('unauthenticated'))]);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm="imgsrv"/);
    const wrong = await api().request('GET', '/errors', { token: 'imgsrv_not_a_real_token' });
    assert.equal(wrong.status, 401);
    assert.equal((await api().request('GET', '/openapi', { token: null })).status, 401);
    const reader = composeClient({ url: ctx.server.url, token: await principalToken(ctx.api, []) });
    const denied = await reader.post('/compose', request());
    assert.deepEqual([denied.status, denied.json.id], [403, String(idOf('forbidden'))]);
    assert.equal((await reader.get('/errors')).status, 403);
    const doc = await reader.get('/openapi');
    assert.equal(doc.status, 200);
    assert.equal(doc.json.servers[0].url, COMPOSE_API);
    const writer = composeClient({ url: ctx.server.url, token: await principalToken(ctx.api, ['content-writer']) });
    assert.equal((await writer.post('/compose', request())).status, 201);
  });
});
