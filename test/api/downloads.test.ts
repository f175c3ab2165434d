import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { before, describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { publishedVersion } from '../helpers/catalog.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { withDatabase } from '../helpers/store.ts';
import { testStorage } from '../helpers/storage.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes } from '../helpers/uploads.ts';

/**
 * Open file descriptors of a process (Linux). Sockets come and go with keep-alive and the
 * database pool, so the leak checks count what a download opens: files under the data dir.
 */
const openFds = (pid: number, under = '/') =>
  readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(under);
    } catch {
      return false; // closed meanwhile
    }
  }).length;

/** Waits until the count settles at or below `limit`, or returns the last count. */
async function fdsSettle(pid: number, limit: number, under: string): Promise<number> {
  let n = openFds(pid, under);
  for (let i = 0; i < 50 && n > limit; i++) {
    await new Promise((r) => setTimeout(r, 100));
    n = openFds(pid, under);
  }
  return n;
}

/** A GET that reads `keep` bytes of the body, then drops the connection. */
function abandonedDownload(url: string, keep: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      let got = 0;
      res.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= keep) {
          req.destroy();
          resolve();
        }
      });
      res.on('end', () => resolve());
    });
    req.on('error', () => resolve());
    req.end();
  });
}

/** A GET read to its end or until the server drops the connection: status, declared length, bytes that came, and whether the response completed. */
function receivedBytes(url: string): Promise<{ status: number; declared: number; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      const done = () => resolve({ status: res.statusCode!, declared: Number(res.headers['content-length']), bytes, complete: res.complete });
      res.on('end', done);
      res.on('aborted', done);
      res.on('error', done);
      res.on('close', done);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('downloads: media types, handles, headers', () => {
  const ctx = useServer();
  let artifactPath: string;
  let attachmentPath: string;
  before(async () => {
    const { artifactId } = await publishedVersion(ctx.api, 'dl', '1.0');
    const manifest = (await ctx.api.get('/v1/images/dl/versions/1.0')).json;
    artifactPath = `/v1/images/dl/versions/1.0/artifacts/${artifactId}/download`;
    attachmentPath = `/v1/images/dl/versions/1.0/artifacts/${artifactId}/attachments/${manifest.artifacts[0].attachments[0].id}/download`;
  });

  it('refuses media types that are not RFC 6838 type/subtype (with RFC 9110 parameters), naming the field', async () => {
    await ctx.api.post('/v1/images', { name: 'mt' });
    await ctx.api.post('/v1/images/mt/versions', { version: '1' });
    const blob = random(64);
    const { digest } = await uploadBytes(ctx.api, blob);
    const artifact = (media: string) =>
      ctx.api.post('/v1/images/mt/versions/1/artifacts', { operating_system: 'debian', architecture: 'amd64', format: 'raw', primary_blob_digest: digest, primary_blob_size_bytes: 64, primary_media_type: media });
    for (const bad of ['text/plain\r\nSet-Cookie: a=1', 'text/plain; x=é中', 'textplain', 'text/', '/plain', 'text/pl ain', 'text/plain;', 'text/plain; a', 'text/plain; a="b', `text/${'x'.repeat(300)}`]) {
      const res = await artifact(bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.match(res.json.detail, /primary_media_type/, bad);
    }
    for (const good of ['application/x-qemu-disk', 'application/vnd.oci.image.layer.v1.tar+gzip', 'text/plain; charset=utf-8', 'text/plain;charset="utf-8"']) {
      const res = await artifact(good);
      assert.equal(res.status, 201, `${good}: ${JSON.stringify(res.json)}`);
      assert.equal((await ctx.api.delete(`/v1/images/mt/versions/1/artifacts/${res.json.id}`)).status, 204);
    }
    const kept = (await artifact('application/octet-stream')).json.id;
    const attach = await ctx.api.post(`/v1/images/mt/versions/1/artifacts/${kept}/attachments`, { name: 'sig', blob_digest: digest, blob_size_bytes: 64, media_type: 'x\ny/z' });
    assert.equal(attach.status, 400);
    assert.match(attach.json.detail, /media_type/);
    const hint = await ctx.api.post('/v1/uploads', { expected_digest: sha256(random(8)), expected_size_bytes: 8, media_type_hint: 'a/b\r\nc: d' });
    assert.equal(hint.status, 400);
    assert.match(hint.json.detail, /media_type_hint/);
  });

  it('serves a media type stored before validation existed as application/octet-stream, without losing a handle', async () => {
    await withDatabase(ctx.server.dataDir, (db) => db.updateTable('artifacts').set({ primary_media_type: 'text/plain; x=é中\r\nSet-Cookie: a=1' }).execute());
    try {
      const pid = ctx.server.process.pid!;
      const files = ctx.server.dataDir;
      const before = openFds(pid, files);
      for (let i = 0; i < 50; i++) {
        for (const method of ['GET', 'HEAD']) {
          const res = await rawRequest(`${ctx.server.url}${artifactPath}`, { method, headers: { connection: 'close' } });
          assert.equal(res.status, 200);
          assert.equal(res.headers['content-type'], 'application/octet-stream');
          assert.equal(res.headers['set-cookie'], undefined);
        }
      }
      assert.ok((await fdsSettle(pid, before, files)) <= before, `data-dir files open before ${before}, after ${openFds(pid, files)}`);
    } finally {
      await withDatabase(ctx.server.dataDir, (db) => db.updateTable('artifacts').set({ primary_media_type: 'application/x-qemu-disk' }).execute());
    }
  });

  it('releases every blob handle: whole, ranged, conditional, HEAD and abandoned downloads', async () => {
    const big = random(8 * 1024 * 1024);
    const { digest } = await uploadBytes(ctx.api, big);
    const pid = ctx.server.process.pid!;
    const url = `${ctx.server.url}/v1/blobs/${digest}`;
    const files = ctx.server.dataDir;
    const before = openFds(pid, files);
    const requests: Promise<unknown>[] = [];
    for (let i = 0; i < 40; i++) {
      requests.push(rawRequest(url, { method: 'GET', headers: { connection: 'close' } }));
      requests.push(rawRequest(url, { method: 'GET', headers: { connection: 'close', range: `bytes=${i * 1000}-${i * 1000 + 99}` } }));
      requests.push(rawRequest(url, { method: 'HEAD', headers: { connection: 'close' } }));
      requests.push(rawRequest(url, { method: 'GET', headers: { connection: 'close', 'if-none-match': `"${digest}"` } }));
      requests.push(abandonedDownload(url, 64 * 1024));
    }
    await Promise.all(requests);
    const after = await fdsSettle(pid, before, files);
    assert.ok(after <= before, `data-dir files open before ${before}, after ${after}`);
    assert.ok(openFds(pid) < 200, 'and few descriptors in all');
  });

  it('serves many downloads at once byte for byte, through both buffer sizes, with abandoned ones among them', async () => {
    // Over 2 MiB buffers' boundaries, and more downloads than get large buffers (4): the rest copy through small ones.
    const bytes = random(5 * 1024 * 1024 + 123);
    const { digest } = await uploadBytes(ctx.api, bytes);
    const url = `${ctx.server.url}/v1/blobs/${digest}`;
    const whole = async () => {
      const res = await fetch(url);
      assert.equal(res.status, 200);
      return sha256(Buffer.from(await res.arrayBuffer()));
    };
    const runs: Promise<unknown>[] = [];
    for (let i = 0; i < 24; i++) {
      runs.push(whole().then((got) => assert.equal(got, sha256(bytes))));
      if (i % 4 === 0) runs.push(abandonedDownload(url, 100_000 + i));
    }
    await Promise.all(runs);
    // Buffers the abandoned downloads held are never handed to a later one while their writes could still be pending.
    for (let i = 0; i < 3; i++) assert.equal(await whole(), sha256(bytes));
  });

  it('ends a download whose stored bytes run out early, closing its reader, and serves the next ones whole', async () => {
    const bytes = random(5 * 1024 * 1024 + 7);
    const { digest } = await uploadBytes(ctx.api, bytes);
    const url = `${ctx.server.url}/v1/blobs/${digest}`;
    const pid = ctx.server.process.pid!;
    const before = openFds(pid, ctx.server.dataDir);
    const restore = await (await testStorage(ctx.server.dataDir)).truncateBlob(digest, 3 * 1024 * 1024);
    try {
      // Over the first 2 MiB read and short of the recorded size: the response is cut, never padded or passed off as whole.
      for (let i = 0; i < 6; i++) {
        const got = await receivedBytes(url);
        assert.equal(got.status, 200);
        assert.equal(got.declared, bytes.length);
        assert.ok(got.bytes < bytes.length, `${got.bytes} of ${bytes.length} bytes arrived: the connection must end early`);
        assert.equal(got.complete, false);
      }
      assert.ok((await fdsSettle(pid, before, ctx.server.dataDir)) <= before, 'every reader of the damaged blob is closed');
    } finally {
      await restore();
    }
    const res = await fetch(url);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(bytes));
  });

  it('sends downloads as attachments with a restrictive Content-Security-Policy', async () => {
    const artifact = await ctx.api.get(artifactPath);
    assert.equal(artifact.status, 200);
    assert.equal(artifact.headers.get('content-disposition'), 'attachment; filename="dl_1.0_debian_amd64_default.qcow2"');
    const attachment = await ctx.api.get(attachmentPath);
    assert.equal(attachment.headers.get('content-disposition'), 'attachment; filename="incus.tar.xz"');
    const blob = await ctx.api.get(`/v1/blobs/${sha256(attachment.bytes)}`);
    assert.equal(blob.headers.get('content-disposition'), 'attachment');
    for (const res of [artifact, attachment, blob]) {
      assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; sandbox");
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
  });

  it('ignores an If-Modified-Since that is not an HTTP-date', async () => {
    for (const value of ['3000', 'yesterday', '2030-01-01', 'Thu, 01 Jan 3000 00:00:00']) {
      const res = await ctx.api.get(artifactPath, { headers: { 'if-modified-since': value } });
      assert.equal(res.status, 200, value);
    }
    for (const value of ['Thu, 01 Jan 2099 00:00:00 GMT', 'Thursday, 01-Jan-99 00:00:00 GMT', 'Thu Jan  1 00:00:00 2099']) {
      const res = await ctx.api.get(artifactPath, { headers: { 'if-modified-since': value } });
      // The obsolete RFC 850 form's two-digit year 99 is 1999 (more than 50 years ahead is the past), so not modified-since is false.
      assert.equal(res.status, value.includes('-99 ') ? 200 : 304, value);
    }
  });

  it('clamps a last byte position past the end (206) and refuses a first position past it (416)', async () => {
    const whole = await ctx.api.get(artifactPath);
    const size = whole.bytes.length;
    const clamped = await ctx.api.get(artifactPath, { headers: { range: 'bytes=0-99999999999999999' } });
    assert.equal(clamped.status, 206);
    assert.equal(clamped.headers.get('content-range'), `bytes 0-${size - 1}/${size}`);
    assert.ok(clamped.bytes.equals(whole.bytes));
    const tail = await ctx.api.get(artifactPath, { headers: { range: `bytes=${size - 10}-999999999999999999999999` } });
    assert.equal(tail.status, 206);
    assert.ok(tail.bytes.equals(whole.bytes.subarray(size - 10)));
    const beyond = await ctx.api.get(artifactPath, { headers: { range: 'bytes=99999999999999999999-' } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${size}`);
  });
});

describe('every GET resource answers HEAD, and framework errors are problems', () => {
  const ctx = useServer();

  it('answers HEAD with the GET status and headers and no body', async () => {
    await publishedVersion(ctx.api, 'headed', '1');
    for (const path of ['/healthz', '/readyz', '/v1/images', '/v1/images/headed', '/v1/images/headed/versions', '/v1/images/headed/refs/1', '/streams/v1/index.json', '/streams/v1/images.json', '/openapi/v1.yaml', '/openapi.json', '/v1/images/missing']) {
      const get = await rawRequest(`${ctx.server.url}${path}`, { method: 'GET' });
      const head = await rawRequest(`${ctx.server.url}${path}`, { method: 'HEAD' });
      assert.equal(head.status, get.status, path);
      assert.equal(head.body.length, 0, path);
      assert.equal(head.headers['content-type'], get.headers['content-type'], path);
      assert.equal(head.headers['content-length'], get.headers['content-length'], path);
      if (get.headers.etag) assert.equal(head.headers.etag, get.headers.etag, path);
    }
  });

  it('answers over-long path segments and malformed escapes with problem+json', async () => {
    const cases: [string, number][] = [
      [`/v1/images/${'a'.repeat(600)}`, 414],
      [`/v1/uploads/${'a'.repeat(600)}`, 414],
      ['/v1/uploads/%ZZ', 400],
      ['/v1/images/%', 400],
      ['/v1/images/%E0%A4%A/versions', 400],
    ];
    for (const [path, status] of cases) {
      for (const method of ['GET', 'HEAD']) {
        const res = await rawRequest(`${ctx.server.url}${path}`, { method });
        assert.equal(res.status, status, `${method} ${path}`);
        assert.match(String(res.headers['content-type']), /^application\/problem\+json/, `${method} ${path}`);
        if (method === 'GET') {
          const body = JSON.parse(res.body.toString('utf8'));
          assert.equal(body.status, status);
          assert.equal(typeof body.detail, 'string');
        }
      }
    }
  });
});
