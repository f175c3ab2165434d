import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { draftVersion, publishedVersion, waitForJob } from '../helpers/catalog.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { assertUnavailable, until } from '../helpers/outage.ts';
import { adminQuery, createSchema, PG_URL, schemaUrl } from '../helpers/postgres.ts';
import { loggedErrors, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { waitForUpload } from '../helpers/uploads.ts';

/** PostgreSQL going away under a running server, through a proxy the test controls. */
describe('PostgreSQL outage', () => {
  let schema: Awaited<ReturnType<typeof createSchema>>;
  let proxy: TcpProxy;
  let server: ServerHandle;
  let api: ApiClient;

  before(async () => {
    schema = await createSchema();
    const target = new URL(PG_URL);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(PG_URL);
    viaProxy.port = String(proxy.port);
    server = await startServer({ env: { IMGSRV_DATABASE_URL: schemaUrl(schema.name, viaProxy.href) } });
    api = apiClient(server);
    await publishedVersion(api, 'steady', '1.0');
  });
  after(async () => {
    await server?.stop();
    await proxy?.close();
    if (server) await removeDir(server.dataDir);
    await schema?.drop();
    if (server) assert.deepEqual(loggedErrors(server), [], 'the server logged errors (a 500 or a crash)');
  });

  it('answers 503 problems while the database is unreachable, and recovers without a restart', async () => {
    const bytes = random(64 * 1024);
    const upload = await api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
    assert.equal(upload.status, 201);
    const putPart = () => api.put(`/v1/uploads/${upload.json.id}/parts/1`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });

    await proxy.cut();
    assertUnavailable(await api.get('/readyz', { token: null }), 'readyz');
    assert.equal((await api.get('/healthz', { token: null })).status, 200, 'the process itself is alive');
    assertUnavailable(await api.get('/v1/images/steady/versions/1.0'), 'a catalog read');
    assertUnavailable(await api.get('/v1/images', { token: null }), 'a public listing');
    assertUnavailable(await api.get('/streams/v1/images.json', { token: null }), 'the Incus feed');
    assertUnavailable(await api.post('/v1/images', { name: 'during-outage' }), 'a write');
    assertUnavailable(await putPart(), 'a part upload');
    assertUnavailable(await api.post('/v1/images/steady/versions', { version: '2.0' }), 'creating a version');
    // Long enough for the job runner and the sweeper to meet the outage too.
    await new Promise((r) => setTimeout(r, 2500));

    await proxy.restore();
    await until('ready again', async () => (await api.get('/readyz', { token: null })).status === 200);
    assert.equal((await api.get('/v1/images/steady/versions/1.0')).json.version.state, 'published', 'nothing stored was lost');
    assert.equal((await api.get('/v1/images/during-outage')).status, 404, 'the refused write left nothing behind');
    const put = await putPart();
    assert.equal(put.status, 200, 'the refused part is simply sent again');
    const complete = await api.post(`/v1/uploads/${upload.json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: bytes.length }] });
    assert.equal(complete.status, 200);
    await waitForUpload(api, upload.json.id, ['ready']);
    await publishedVersion(api, 'steady', '2.0');
  });

  it('survives its database connections being terminated', async () => {
    await draftVersion(api, 'steady', '3.0', { metadata: false });
    const ports = proxy.upstreamPorts();
    assert.ok(ports.length > 0, 'the server holds connections');
    const killed = await adminQuery('select pg_terminate_backend(pid) from pg_stat_activity where client_port = any($1::int[])', [ports]);
    assert.equal(killed.length, ports.length);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await api.get('/v1/images/steady/versions/3.0');
      if (res.status !== 200) assertUnavailable(res, `request ${i} after the connections died`);
      statuses.push(res.status);
    }
    assert.equal(statuses.at(-1), 200, `served again: ${statuses.join(' ')}`);
    const publish = await api.post('/v1/images/steady/versions/3.0/publish');
    assert.equal(publish.status, 202);
    assert.equal((await waitForJob(api, publish.json.id)).state, 'succeeded');
  });
});
