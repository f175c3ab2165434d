import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { createS3Driver } from '../../src/blobs/s3/s3-driver.ts';
import { migrations } from '../../src/store/sql/migrations/index.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { draftVersion, publishedVersion, waitForJob } from '../helpers/catalog.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { adminQuery, createSchema } from '../helpers/postgres.ts';
import { loggedErrors, makeDataDir, newToken, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { heldRequest } from '../helpers/raw-http.ts';
import { newBucket, stopSharedRgw, type TestBucket } from '../helpers/s3.ts';
import { uploadBytes, waitForUpload } from '../helpers/uploads.ts';

after(stopSharedRgw);

/**
 * Several stateless imgsrv processes behind one load balancer: one PostgreSQL schema, the same
 * bootstrap token, and one blob storage: a shared data dir, or (`s3`) one bucket of a real Ceph
 * RGW with a data dir of its own for each instance, so that nothing is shared on local disk.
 */
for (const storage of ['one data dir', 's3'] as const) {
  describe(`several instances on one PostgreSQL database and ${storage === 's3' ? 'one S3 bucket' : 'one data dir'}`, () => {
    let schema: Awaited<ReturnType<typeof createSchema>>;
    let dataDir: string;
    const token = newToken();
    const running = new Set<ServerHandle>();
    let bucket: TestBucket | undefined;
    const ownDirs: string[] = [];
    const start = async (env: Record<string, string> = {}) => {
      const dir = bucket ? await makeDataDir() : dataDir;
      if (bucket) ownDirs.push(dir);
      const server = await startServer({ dataDir: dir, token, env: { IMGSRV_DATABASE_URL: schema.url, IMGSRV_JOB_LEASE: '2', ...bucket?.env, ...env } });
      running.add(server);
      return server;
    };
    const stop = async (server: ServerHandle) => {
      await server.stop();
      running.delete(server);
      assert.deepEqual(loggedErrors(server), [], 'the server logged errors');
    };
    const q = <R extends Record<string, unknown>>(text: string, values: unknown[] = []) => adminQuery<R>(text.replaceAll('$schema', `"${schema.name}"`), values);

    let a: ApiClient;
    let b: ApiClient;
    let servers: ServerHandle[];

    before(async () => {
      schema = await createSchema();
      dataDir = await makeDataDir();
      if (storage === 's3') bucket = await newBucket();
    });
    after(async () => {
      for (const s of running) await s.kill();
      for (const dir of [dataDir, ...ownDirs]) await removeDir(dir);
      await schema.drop();
    });

    /** What the blob storage holds besides blobs: staged bytes, claims, probes, temporary files. */
    const leftovers = async () => {
      if (!bucket) return (await readdir(dataDir, { recursive: true })).filter((f) => f.endsWith('.tmp') || f.includes('ready-'));
      const keys: string[] = [];
      for await (const key of createS3Driver(bucket.options).list()) if (!key.startsWith('blobs/') && !key.startsWith('uploads/')) keys.push(key);
      return keys;
    };

    it('start together on an empty database: migrations run once, one first admin', async () => {
      servers = await Promise.all([start(), start(), start()]);
      const applied = await q<{ name: string }>('select name from $schema.kysely_migration order by name');
      assert.deepEqual(
        applied.map((r) => r.name),
        Object.keys(migrations),
      );
      const admins = await q('select principal_id from $schema.principal_roles where role_id = $1', ['auth-manager']);
      assert.equal(admins.length, 1, 'one bootstrap admin');
      [a, b] = servers.map((s) => apiClient(s)) as [ApiClient, ApiClient];
      await stop(servers[2]!);
      for (const api of [a, b]) assert.equal((await api.get('/readyz')).status, 200);
    });

    it('takes an upload begun on one instance with parts sent to the other', async () => {
      const bytes = random(3 * 1024 * 1024 + 17);
      const begin = await a.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
      assert.equal(begin.status, 201);
      const parts = [];
      for (const [i, [api, chunk]] of [
        [a, bytes.subarray(0, 2 * 1024 * 1024)],
        [b, bytes.subarray(2 * 1024 * 1024)],
      ].entries() as IterableIterator<[number, [ApiClient, Buffer]]>) {
        const put = await api.put(`/v1/uploads/${begin.json.id}/parts/${i + 1}`, { body: chunk, headers: { 'content-type': 'application/octet-stream' } });
        assert.equal(put.status, 200, JSON.stringify(put.json));
        parts.push({ number: i + 1, etag: put.json.etag, size_bytes: put.json.size_bytes });
      }
      assert.equal((await a.get(`/v1/uploads/${begin.json.id}`)).json.state, 'uploading');
      assert.equal((await b.post(`/v1/uploads/${begin.json.id}/complete`, { parts })).status, 200);
      await waitForUpload(a, begin.json.id, ['ready']);
      const blob = await a.get(`/v1/blobs/${sha256(bytes)}`);
      assert.ok(blob.bytes.equals(bytes));
    });

    for (const declare of [true, false]) {
      it(`waits for a part write still streaming on the other instance before verifying (${declare ? 'declared part size' : 'contract path'})`, async () => {
        const MiB = 1024 * 1024;
        const bytes = random(2 * MiB);
        const digest = sha256(bytes);
        const begin = await a.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: bytes.length, ...(declare && { part_size_bytes: MiB }) });
        const listed = [];
        for (const n of [1, 2]) {
          const put = await a.put(`/v1/uploads/${begin.json.id}/parts/${n}`, { body: bytes.subarray((n - 1) * MiB, n * MiB), headers: { 'content-type': 'application/octet-stream' } });
          listed.push({ number: n, etag: put.json.etag, size_bytes: put.json.size_bytes });
        }
        // A re-send of part 2 on B that starts like the real part and stalls; complete on A.
        const resend = heldRequest(`${servers[1]!.url}/v1/uploads/${begin.json.id}/parts/2`, {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}`, 'content-length': MiB },
        });
        await resend.write(bytes.subarray(MiB, MiB + MiB / 2));
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await a.post(`/v1/uploads/${begin.json.id}/complete`, { parts: listed })).status, 200);
        // B learns of the commit at its next lease renewal and cuts the write off; only then does A verify.
        const answer = await resend.response;
        assert.ok('error' in answer || answer.status === 412, JSON.stringify('status' in answer ? answer.status : answer.error.message));
        await resend.write(random(MiB / 2)).catch(() => {});
        assert.equal((await waitForUpload(a, begin.json.id, ['ready', 'failed'], 40_000)).state, 'ready');
        for (const api of [a, b]) {
          const served = await api.get(`/v1/blobs/${digest}`);
          assert.equal(sha256(served.bytes), digest, 'the served bytes hash to their digest');
        }
      });
    }

    it('serves one registry: a push begun on one instance is patched and finished on the other', async () => {
      const auth = { authorization: `Basic ${Buffer.from(`ci:${token}`).toString('base64')}` };
      const [first, second] = servers as [ServerHandle, ServerHandle];
      const v2 = (server: ServerHandle, path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
      const bytes = random(2 * 1024 * 1024 + 5);
      const started = await v2(first, '/v2/shared/app/blobs/uploads/', { method: 'POST' });
      const location = started.headers.get('location')!;
      const half = 1024 * 1024;
      assert.equal((await v2(first, location, { method: 'PATCH', headers: { 'content-range': `0-${half - 1}` }, body: bytes.subarray(0, half) })).status, 202);
      const status = await v2(second, location);
      assert.deepEqual([status.status, status.headers.get('range')], [204, `0-${half - 1}`], 'the other instance sees the same session');
      assert.equal((await v2(second, location, { method: 'PATCH', headers: { 'content-range': `${half}-${bytes.length - 1}` }, body: bytes.subarray(half) })).status, 202);
      assert.equal((await v2(first, `${location}?digest=${sha256(bytes)}`, { method: 'PUT' })).status, 201);
      for (const server of [first, second]) {
        const blob = await v2(server, `/v2/shared/app/blobs/${sha256(bytes)}`);
        assert.ok(Buffer.from(await blob.arrayBuffer()).equals(bytes));
      }
    });

    it('ends two instances committing the same digest at once with one intact blob', async () => {
      const bytes = random(5 * 1024 * 1024);
      const [fromA, fromB] = await Promise.all([uploadBytes(a, bytes, { parts: 2 }), uploadBytes(b, bytes, { parts: 3 })]);
      assert.equal(fromA.digest, fromB.digest);
      for (const api of [a, b]) assert.ok((await api.get(`/v1/blobs/${fromA.digest}`)).bytes.equals(bytes), 'the blob is whole');
      assert.deepEqual(await leftovers(), [], 'no temporary files left');
      const records = await q('select size from $schema.blobs where digest = $1', [fromA.digest]);
      assert.deepEqual(records, [{ size: String(bytes.length) }]);
    });

    it('publishes once for concurrent publishes on both instances; the other sees the result and its feed follows', async () => {
      const feedBefore = await b.get('/streams/v1/images.json');
      assert.equal(feedBefore.status, 200);
      await draftVersion(a, 'shared', '1.0');
      const posts = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? b : a).post('/v1/images/shared/versions/1.0/publish')));
      const ids = new Set(posts.map((p) => p.json.id));
      assert.equal(ids.size, 1, `one job: ${posts.map((p) => `${p.status} ${JSON.stringify(p.json)}`).join('; ')}`);
      const [jobId] = ids;
      const done = await waitForJob(b, jobId);
      assert.equal(done.state, 'succeeded', JSON.stringify(done));
      assert.equal((await q("select count(*) as n from $schema.jobs where kind = 'publish'"))[0]!.n, '1', 'one durable job');
      for (const api of [a, b]) {
        assert.equal((await api.get('/v1/images/shared/versions/1.0')).json.version.state, 'published');
        const feed = await api.get('/streams/v1/images.json');
        assert.ok(Object.keys(feed.json.products).some((p) => p.startsWith('shared:')), 'the feed of every instance lists it');
      }
      assert.notEqual((await b.get('/streams/v1/images.json')).headers.get('etag'), feedBefore.headers.get('etag'));
    });

    it('never serves a stale alias: moved on one instance, read on the other at once', async () => {
      await publishedVersion(a, 'shared', '1.1');
      for (const api of [a, b]) assert.equal((await api.get('/v1/images/shared/refs/1.0')).json.version.version, '1.0', 'both caches are warm');
      for (const target of ['1.0', '1.1', '1.0', '1.1', '1.0', '1.1']) {
        assert.equal((await a.put('/v1/images/shared/aliases/moving', { json: { version: target } })).status, 200);
        assert.equal((await b.get('/v1/images/shared/refs/moving')).json.version.version, target);
      }
      assert.deepEqual((await b.get('/v1/images/shared/versions')).json.versions.map((v: { version: string }) => v.version).sort(), ['1.0', '1.1']);
    });

    it('never serves a stale alias under load: a read that starts after the move never joins a revision query begun before it', async () => {
      // Readers keep B's revision queries in flight all the time, so a read that joined one
      // already running (begun before the move committed) would see the old target.
      let stop = false;
      const readers = Array.from({ length: 8 }, async () => {
        while (!stop) assert.equal((await b.get('/v1/images/shared/refs/moving', { token: null })).status, 200);
      });
      try {
        let etag = (await b.get('/v1/images/shared/refs/moving')).headers.get('etag')!;
        // The previous test left the alias on 1.1.
        for (const target of ['1.0', '1.1', '1.0', '1.1', '1.0', '1.1', '1.0', '1.1']) {
          assert.equal((await a.put('/v1/images/shared/aliases/moving', { json: { version: target } })).status, 200);
          const read = await b.get('/v1/images/shared/refs/moving', { headers: { 'if-none-match': etag } });
          assert.equal(read.status, 200, `moved to ${target}: never 304 with the ETag from before the move`);
          assert.equal(read.json.version.version, target);
          etag = read.headers.get('etag')!;
        }
      } finally {
        stop = true;
        await Promise.all(readers);
      }
    });

    it('finishes on the other instance a publish job whose instance was killed', async () => {
      await Promise.all(servers.slice(0, 2).map(stop));
      const parked = await start({ IMGSRV_FAILPOINTS: 'publish-incus_index' });
      const p = apiClient(parked);
      await draftVersion(p, 'shared', '2.0');
      const job = await p.post('/v1/images/shared/versions/2.0/publish');
      assert.equal(job.status, 202);
      await parked.waitForOutput(/failpoint reached: publish-incus_index\n/);
      const other = await start();
      const o = apiClient(other);
      assert.equal((await o.get(`/v1/publish-jobs/${job.json.id}`)).json.state, 'running', 'the other instance leaves a leased job alone');
      await parked.kill();
      running.delete(parked);
      const done = await waitForJob(o, job.json.id);
      assert.equal(done.state, 'succeeded', JSON.stringify(done));
      const attempts = Object.fromEntries((done.steps as { name: string; attempt_count: number }[]).map((s) => [s.name, s.attempt_count]));
      assert.deepEqual(attempts, { validate_catalog: 1, incus_index: 2, finalize_publish: 1 });
      assert.equal((await o.get('/v1/images/shared/versions/2.0')).json.version.state, 'published');
      await stop(other);
    });

    if (storage === 's3') {
      it('kept nothing of the blobs on local disk: every instance has an empty data dir of its own', async () => {
        for (const dir of ownDirs) assert.deepEqual(await readdir(dir, { recursive: true }), [], dir);
      });
    }
  });
}
