import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { publishedVersion } from '../helpers/catalog.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { assertUnavailable, until } from '../helpers/outage.ts';
import { newBucket, stopSharedRgw, type TestBucket } from '../helpers/s3.ts';
import { loggedErrors, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { waitForUpload } from '../helpers/uploads.ts';

/** The object store going away under a running server: its gateway killed, then started again. */
describe('S3 outage (Ceph RGW killed and restarted)', () => {
  let bucket: TestBucket;
  let server: ServerHandle;
  let api: ApiClient;
  let disk: Buffer;

  before(async () => {
    bucket = await newBucket();
    server = await startServer({ env: bucket.env });
    api = apiClient(server);
    ({ disk } = await publishedVersion(api, 'steady', '1.0'));
  });
  after(async () => {
    await server?.stop();
    if (server) await removeDir(server.dataDir);
    await stopSharedRgw();
    if (server) assert.deepEqual(loggedErrors(server), [], 'the server logged errors (a 500 or a crash)');
  });

  it('answers 503 problems while the object store is unreachable, and recovers without a restart', async () => {
    const bytes = random(64 * 1024);
    const upload = await api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
    assert.equal(upload.status, 201);
    const putPart = () => api.put(`/v1/uploads/${upload.json.id}/parts/1`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    const diskDigest = sha256(disk);

    await bucket.rgw.stopGateway();
    assertUnavailable(await api.get('/readyz', { token: null }), 'readyz', /blobs unavailable/);
    assert.equal((await api.get('/healthz', { token: null })).status, 200, 'the process itself is alive');
    assertUnavailable(await api.get(`/v1/blobs/${diskDigest}`, { token: null }), 'a blob download', /object store/);
    assertUnavailable(await putPart(), 'a part upload', /object store/);
    assert.equal((await api.get('/v1/images/steady/versions/1.0')).status, 200, 'the catalog, in the database, is still served');
    // Long enough for the job runner and the sweeper to meet the outage too.
    await new Promise((r) => setTimeout(r, 2500));

    await bucket.rgw.startGateway();
    await until('ready again', async () => (await api.get('/readyz', { token: null })).status === 200);
    assert.ok((await api.get(`/v1/blobs/${diskDigest}`, { token: null })).bytes.equals(disk), 'nothing stored was lost');
    const put = await putPart();
    assert.equal(put.status, 200, 'the refused part is simply sent again');
    const complete = await api.post(`/v1/uploads/${upload.json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: bytes.length }] });
    assert.equal(complete.status, 200);
    await waitForUpload(api, upload.json.id, ['ready']);
    assert.ok((await api.get(`/v1/blobs/${sha256(bytes)}`, { token: null })).bytes.equals(bytes));
    await publishedVersion(api, 'steady', '2.0');
  });
});
