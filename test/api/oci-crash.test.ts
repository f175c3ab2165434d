import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { makeDataDir, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';

const MiB = 1024 * 1024;

/** The registry's answers, with Basic credentials (any user, the token as password). */
function registry(server: ServerHandle) {
  const auth = { authorization: `Basic ${Buffer.from(`ci:${server.token}`).toString('base64')}` };
  return (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
}

describe('SIGKILL during a chunked push leaves no blob or the verified blob; the client retry succeeds', () => {
  for (const failpoint of ['ingest-started', 'blob-commit-before', 'blob-commit-after', 'ingest-before-ready']) {
    it(`killed at ${failpoint} inside the final PUT`, async () => {
      const dataDir = await makeDataDir();
      let server = await startServer({ dataDir, env: { IMGSRV_FAILPOINTS: failpoint } });
      try {
        let v2 = registry(server);
        const bytes = random(6 * MiB + 123);
        const digest = sha256(bytes);
        const started = await v2('/v2/crash/app/blobs/uploads/', { method: 'POST' });
        assert.equal(started.status, 202);
        const location = started.headers.get('location')!;
        for (const [start, end] of [[0, 3 * MiB - 1], [3 * MiB, bytes.length - 1]] as const) {
          const patched = await v2(location, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end}` }, body: bytes.subarray(start, end + 1) });
          assert.equal(patched.status, 202);
        }
        // The final PUT hangs at the failpoint; the process dies under it.
        const finalPut = v2(`${location}?digest=${digest}`, { method: 'PUT' }).catch((e: unknown) => e);
        await server.waitForOutput(new RegExp(`failpoint reached: ${failpoint}`));
        const during = await v2(`/v2/crash/app/blobs/${digest}`);
        assert.equal(during.status, 404, 'the repository serves nothing before the commit is recorded');
        await server.kill();
        await finalPut;

        server = await startServer({ dataDir, token: server.token });
        v2 = registry(server);
        const before = await v2(`/v2/crash/app/blobs/${digest}`);
        assert.ok(before.status === 404 || (before.status === 200 && sha256(Buffer.from(await before.arrayBuffer())) === digest), 'no blob, or the verified one');
        const retried = await v2(`${location}?digest=${digest}`, { method: 'PUT' });
        assert.equal(retried.status, 201, await retried.text());
        const served = await v2(`/v2/crash/app/blobs/${digest}`);
        assert.equal(served.status, 200);
        assert.ok(Buffer.from(await served.arrayBuffer()).equals(bytes));
      } finally {
        await server.stop();
        await removeDir(dataDir);
      }
    });
  }
});
