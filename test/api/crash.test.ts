import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { random, sha256, split } from '../helpers/bytes.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { makeDataDir, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { testStorage } from '../helpers/storage.ts';
import { waitForUpload } from '../helpers/uploads.ts';

const octets = { 'content-type': 'application/octet-stream' };

/** Uploads the parts; `placed` declares a fixed part size, so the parts are written in place. */
async function beginAndPut(api: ApiClient, bytes: Buffer, parts: number, placed = false) {
  const chunks = split(bytes, parts);
  const begin = await api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length, ...(placed && { part_size_bytes: chunks[0]!.length }) });
  const listed = [];
  for (const [i, chunk] of chunks.entries()) {
    const put = await api.put(`/v1/uploads/${begin.json.id}/parts/${i + 1}`, { body: chunk, headers: octets });
    listed.push({ number: i + 1, etag: put.json.etag, size_bytes: put.json.size_bytes });
  }
  return { id: begin.json.id as string, listed };
}

/** Temporary files or objects and leftover upload areas in the blob storage. */
const leftovers = async (dataDir: string) => (await testStorage(dataDir)).leftovers();
const blobStored = async (dataDir: string, digest: string) => (await testStorage(dataDir)).hasBlob(digest);

describe('SIGKILL during the ingest commit leaves no partial blob and the upload completes after restart', () => {
  for (const failpoint of ['ingest-started', 'blob-commit-before', 'blob-commit-after', 'ingest-before-ready']) {
    for (const [parts, placed] of [[1, false], [3, false], [3, true]] as const) {
      it(`killed at ${failpoint}, ${parts} part(s)${placed ? ' written in place' : ''}`, async () => {
        const dataDir = await makeDataDir();
        let server: ServerHandle | undefined;
        try {
          server = await startServer({ dataDir, env: { IMGSRV_FAILPOINTS: failpoint } });
          const api = apiClient(server);
          const bytes = random(5 * 1024 * 1024 + 17);
          const digest = sha256(bytes);
          const { id, listed } = await beginAndPut(api, bytes, parts, placed);
          assert.equal((await api.post(`/v1/uploads/${id}/complete`, { parts: listed })).status, 200);
          await server.waitForOutput(new RegExp(`failpoint reached: ${failpoint}`));
          assert.equal((await api.get(`/v1/uploads/${id}`)).json.state, 'ingesting');
          assert.equal((await api.get(`/v1/blobs/${digest}`)).status, 404, 'nothing is served before the session is ready');
          if (failpoint !== 'blob-commit-after' && failpoint !== 'ingest-before-ready') assert.ok(!(await blobStored(dataDir, digest)), 'no unverified file at the content address');
          await server.kill();

          server = await startServer({ dataDir, token: server.token });
          const restarted = apiClient(server);
          assert.equal((await waitForUpload(restarted, id)).state, 'ready');
          const served = await restarted.get(`/v1/blobs/${digest}`);
          assert.ok(served.bytes.equals(bytes), 'the blob is complete and correct');
          assert.deepEqual(await leftovers(dataDir), [], 'no temporary files or part areas are left');
        } finally {
          await server?.stop();
          await removeDir(dataDir);
        }
      });
    }
  }

  it('killed at an unplanned moment while copying', async () => {
    const dataDir = await makeDataDir();
    let server = await startServer({ dataDir });
    try {
      const api = apiClient(server);
      const bytes = random(128 * 1024 * 1024);
      const { id, listed } = await beginAndPut(api, bytes, 4);
      await api.post(`/v1/uploads/${id}/complete`, { parts: listed });
      for (let state = ''; state !== 'ingesting'; state = (await api.get(`/v1/uploads/${id}`)).json.state) assert.notEqual(state, 'ready', 'the commit finished before the kill');
      await server.kill();
      server = await startServer({ dataDir, token: server.token });
      const restarted = apiClient(server);
      assert.equal((await waitForUpload(restarted, id)).state, 'ready');
      assert.ok((await restarted.get(`/v1/blobs/${sha256(bytes)}`)).bytes.equals(bytes));
      assert.deepEqual(await leftovers(dataDir), []);
    } finally {
      await server.stop();
      await removeDir(dataDir);
    }
  });
});

describe('a blob file without its record (crash between rename and commit)', () => {
  it('is not trusted by a session claiming the digest with another size; the real upload completes', async () => {
    const dataDir = await makeDataDir();
    let server = await startServer({ dataDir, env: { IMGSRV_FAILPOINTS: 'ingest-before-ready' } });
    try {
      const api = apiClient(server);
      const bytes = random(1000);
      const digest = sha256(bytes);
      const honest = await beginAndPut(api, bytes, 1);
      await api.post(`/v1/uploads/${honest.id}/complete`, { parts: honest.listed });
      await server.waitForOutput(/failpoint reached: ingest-before-ready/);
      assert.ok(await blobStored(dataDir, digest), 'the verified file is at its address, its record not yet written');

      const liar = await api.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: 5 });
      assert.equal(liar.status, 201);
      const put = await api.put(`/v1/uploads/${liar.json.id}/parts/1`, { body: Buffer.from('junk!'), headers: octets });
      await api.post(`/v1/uploads/${liar.json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: 5 }] });
      const failed = await waitForUpload(api, liar.json.id);
      assert.equal(failed.state, 'failed');
      assert.match(failed.failure_reason ?? '', /is stored with 1000 bytes, not the 5 this upload expects/);
      await server.kill();

      server = await startServer({ dataDir, token: server.token });
      const restarted = apiClient(server);
      assert.equal((await waitForUpload(restarted, honest.id)).state, 'ready');
      assert.ok((await restarted.get(`/v1/blobs/${digest}`)).bytes.equals(bytes), 'served whole, with its true size');
      assert.equal((await restarted.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: 1000 })).json.id, honest.id);
      assert.equal((await restarted.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: 5 })).status, 412);
    } finally {
      await server.stop();
      await removeDir(dataDir);
    }
  });
});

describe('SIGKILL during a part upload', () => {
  it('keeps the parts that arrived; the interrupted part is simply sent again', async () => {
    const dataDir = await makeDataDir();
    let server = await startServer({ dataDir });
    try {
      const api = apiClient(server);
      const bytes = random(6 * 1024 * 1024);
      const [first, second] = split(bytes, 2) as [Buffer, Buffer];
      const begin = await api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
      const id = begin.json.id as string;
      const p1 = await api.put(`/v1/uploads/${id}/parts/1`, { body: first, headers: octets });

      // Stream part 2 slowly and kill the server halfway through it.
      const interrupted = new Promise<void>((resolve) => {
        const req = httpRequest(`${server.url}/v1/uploads/${id}/parts/2`, { method: 'PUT', headers: { ...octets, authorization: `Bearer ${server.token}`, 'content-length': String(second.length) } });
        req.on('error', () => resolve());
        req.on('response', () => resolve());
        req.write(second.subarray(0, 1024 * 1024));
      });
      await new Promise((r) => setTimeout(r, 200));
      await server.kill();
      await interrupted;

      server = await startServer({ dataDir, token: server.token });
      const restarted = apiClient(server);
      const after = await restarted.get(`/v1/uploads/${id}`);
      assert.equal(after.json.state, 'uploading');
      assert.deepEqual(after.json.received_parts, [{ upload_id: id, part_number: 1, etag: p1.json.etag, size_bytes: first.length }], 'the partial part was never recorded');
      const p2 = await restarted.put(`/v1/uploads/${id}/parts/2`, { body: second, headers: octets });
      assert.equal(p2.status, 200);
      await restarted.post(`/v1/uploads/${id}/complete`, {
        parts: [
          { number: 1, etag: p1.json.etag, size_bytes: first.length },
          { number: 2, etag: p2.json.etag, size_bytes: second.length },
        ],
      });
      assert.equal((await waitForUpload(restarted, id)).state, 'ready');
      assert.ok((await restarted.get(`/v1/blobs/${sha256(bytes)}`)).bytes.equals(bytes));
      assert.deepEqual(await leftovers(dataDir), [], 'the interrupted part file went with the session area');
    } finally {
      await server.stop();
      await removeDir(dataDir);
    }
  });
});
