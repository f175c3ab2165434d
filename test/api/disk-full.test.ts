import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { loggedErrors, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { waitForUpload } from '../helpers/uploads.ts';

const MiB = 1024 * 1024;
const octets = { 'content-type': 'application/octet-stream' };

/** Sends `sizes` as parts 1.. of one upload (no declared part size) and returns the part list. */
async function sendParts(api: ApiClient, bytes: Buffer, sizes: number[]) {
  const begin = await api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
  assert.equal(begin.status, 201);
  const listed = [];
  let at = 0;
  for (const [i, size] of sizes.entries()) {
    const put = await api.put(`/v1/uploads/${begin.json.id}/parts/${i + 1}`, { body: bytes.subarray(at, at + size), headers: octets });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    listed.push({ number: i + 1, etag: put.json.etag, size_bytes: size });
    at += size;
  }
  return { id: begin.json.id as string, listed };
}

// The data dir is a small tmpfs (mounting needs root, as the test suite runs). A local disk
// filling up is what this tests, so the blobs are in the data dir whatever IMGSRV_TEST_BLOBS says.
describe('a full disk is found at complete (507) and never retried blindly', () => {
  let mount: string;
  let server: ServerHandle;
  let api: ApiClient;
  before(async () => {
    mount = await mkdtemp(join(tmpdir(), 'imgsrv-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', mount]);
    server = await startServer({ dataDir: mount, env: { IMGSRV_BLOB_STORE: 'fs', IMGSRV_FAILPOINTS: 'ingest-started@1500' } });
    api = apiClient(server);
  });
  after(async () => {
    await server?.stop();
    // Drops the PostgreSQL schema of the data dir, if any; the mount point itself stays until unmounted.
    await removeDir(mount).catch(() => {});
    execFileSync('umount', [mount]);
    await rm(mount, { recursive: true, force: true });
    assert.deepEqual(loggedErrors(server), []);
  });

  it('refuses complete at once when copying parts that broke the pattern needs more room than there is', async () => {
    const bytes = random(30 * MiB);
    // Part 1 sets the pattern (10 MiB); parts 2 and 3 break it, so they are kept apart and would be copied.
    const { id, listed } = await sendParts(api, bytes, [10 * MiB, 12 * MiB, 8 * MiB]);
    const res = await api.post(`/v1/uploads/${id}/complete`, { parts: listed });
    assert.equal(res.status, 507, JSON.stringify(res.json));
    assert.equal(res.json.code, 'insufficient_storage');
    assert.match(res.json.detail, /needs 20971520 bytes of free space/);
    assert.equal((await api.get(`/v1/uploads/${id}`)).json.state, 'uploading', 'the session stays open for a retry');
    assert.equal((await api.post(`/v1/uploads/${id}/abort`)).status, 200);
  });

  it('completes an upload of equal parts on the same disk: its bytes are written once, in place', async () => {
    const bytes = random(30 * MiB);
    const { id, listed } = await sendParts(api, bytes, [10 * MiB, 10 * MiB, 10 * MiB]);
    assert.equal((await api.post(`/v1/uploads/${id}/complete`, { parts: listed })).status, 200);
    assert.equal((await waitForUpload(api, id)).state, 'ready');
    assert.ok((await api.get(`/v1/blobs/${sha256(bytes)}`)).bytes.equals(bytes));
  });

  it('fails the session with the reason, within seconds, when the disk fills up during the commit', async () => {
    const bytes = random(4 * MiB);
    const { id, listed } = await sendParts(api, bytes, [1 * MiB, 2 * MiB, 1 * MiB]);
    assert.equal((await api.post(`/v1/uploads/${id}/complete`, { parts: listed })).status, 200);
    // While the commit waits at its failpoint, something else takes the rest of the disk.
    await writeFile(join(mount, 'filler'), Buffer.alloc(0));
    const free = Number(execFileSync('df', ['--output=avail', '-B1', mount]).toString().split('\n')[1]);
    await writeFile(join(mount, 'filler'), Buffer.alloc(Math.max(0, free - 64 * 1024)));
    const started = Date.now();
    const done = await waitForUpload(api, id, ['ready', 'failed'], 15_000);
    assert.equal(done.state, 'failed');
    assert.match(done.failure_reason ?? '', /full/);
    assert.ok(Date.now() - started < 15_000);
    await rm(join(mount, 'filler'));
  });
});
