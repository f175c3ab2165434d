import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256 } from '../helpers/bytes.ts';
import { publishedVersion } from '../helpers/catalog.ts';
import { apiClient, pinnedFetch, type ApiClient } from '../helpers/client.ts';
import { incusRemote, type IncusCli } from '../helpers/incus.ts';
import { newBucket, stopSharedRgw, type TestBucket } from '../helpers/s3.ts';
import { loggedErrors, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { selfSignedCert } from '../helpers/tls.ts';

/** Downloads handed to the object store: 307 to a presigned URL, which clients (and incus) follow. */
describe('S3 downloads redirected to presigned URLs (IMGSRV_S3_REDIRECT=presigned)', () => {
  let work: string;
  let bucket: TestBucket;
  let server: ServerHandle;
  let api: ApiClient;
  let send: typeof fetch;
  let incus: IncusCli;
  let published: Awaited<ReturnType<typeof publishedVersion>>;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'imgsrv-s3-redirect-'));
    bucket = await newBucket();
    const { certFile, keyFile, cert: ca } = selfSignedCert(work);
    server = await startServer({ dataDir: join(work, 'data'), env: { ...bucket.env, IMGSRV_S3_REDIRECT: 'presigned', IMGSRV_S3_REDIRECT_TTL: '60', IMGSRV_TLS_CERT: certFile, IMGSRV_TLS_KEY: keyFile } });
    api = apiClient({ ...server, ca });
    send = pinnedFetch(ca);
    published = await publishedVersion(api, 'redirected', '1.0');
    incus = await incusRemote(work, server.url, ca);
  });
  after(async () => {
    await server?.stop();
    await stopSharedRgw();
    if (work) await removeDir(work);
    if (server) assert.deepEqual(loggedErrors(server), [], 'the server logged errors');
  });

  const get = (path: string, headers: Record<string, string> = {}, redirect: 'manual' | 'follow' = 'manual') => send(`${server.url}${path}`, { headers, redirect });

  it('answers a blob GET with 307 to the object store, whose URL serves the bytes and ranges; HEAD, 304 and 416 stay here', async () => {
    const digest = sha256(published.disk);
    const res = await get(`/v1/blobs/${digest}`);
    assert.equal(res.status, 307);
    const location = res.headers.get('location')!;
    assert.ok(location.startsWith(`${bucket.rgw.endpoint}/${bucket.bucket}/blobs/sha256/`), location);
    assert.match(location, /X-Amz-Expires=60/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('etag'), `"${digest}"`);
    const whole = await fetch(location);
    assert.equal(whole.status, 200);
    assert.ok(Buffer.from(await whole.arrayBuffer()).equals(published.disk));
    const ranged = await get(`/v1/blobs/${digest}`, { range: 'bytes=100-199' }, 'follow');
    assert.equal(ranged.status, 206, 'the Range goes along with the redirect');
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(published.disk.subarray(100, 200)));

    const head = await send(`${server.url}/v1/blobs/${digest}`, { method: 'HEAD' });
    assert.deepEqual([head.status, head.headers.get('content-length')], [200, String(published.disk.length)]);
    assert.equal((await get(`/v1/blobs/${digest}`, { 'if-none-match': `"${digest}"` })).status, 304);
    assert.equal((await get(`/v1/blobs/${digest}`, { range: `bytes=${published.disk.length + 10}-` })).status, 416);
  });

  it('redirects artifact downloads with their media type and file name, and registry blob pulls', async () => {
    const manifest = (await api.get('/v1/images/redirected/versions/1.0')).json;
    const artifact = manifest.artifacts[0].artifact;
    const download = await get(`/v1/images/redirected/versions/1.0/artifacts/${artifact.id}/download`, {}, 'follow');
    assert.equal(download.status, 200);
    assert.equal(download.headers.get('content-type'), 'application/x-qemu-disk');
    assert.equal(download.headers.get('content-disposition'), `attachment; filename="redirected_1.0_debian_amd64_default.qcow2"`);
    assert.ok(Buffer.from(await download.arrayBuffer()).equals(published.disk));
    const pull = await get(`/v2/redirected/blobs/${artifact.primary_blob_digest}`);
    assert.equal(pull.status, 307, 'registries may redirect blob GETs (distribution does, to S3)');
    assert.equal(pull.headers.get('docker-content-digest'), artifact.primary_blob_digest);
  });

  it('is followed by the real incus client: image export verifies the redirected bytes', async () => {
    const out = await mkdtemp(join(work, 'export-'));
    await incus('image', 'export', 'imgsrv:redirected/1.0', out, '--vm');
    const files = await Promise.all((await readdir(out)).map((f) => readFile(join(out, f))));
    const fingerprint = createHash('sha256').update(published.metadata!).update(published.disk).digest('hex');
    assert.equal(files.length, 2);
    assert.ok(files.some((f) => f.equals(published.disk)), 'the disk came through the redirect whole');
    assert.ok([files[0]!, files[1]!].some((f, i) => createHash('sha256').update(f).update(files[1 - i]!).digest('hex') === fingerprint));
  });
});
