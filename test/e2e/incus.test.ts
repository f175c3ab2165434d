import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { publishedVersion } from '../helpers/catalog.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { incusRemote, type IncusCli } from '../helpers/incus.ts';
import { removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { selfSignedCert } from '../helpers/tls.ts';

const IMAGE = 'debian-bookworm';

describe('the real incus client reads the Simple Streams feed', () => {
  let work: string;
  let server: ServerHandle;
  let api: ApiClient;
  const published: Record<string, { disk: Buffer; metadata: Buffer; fingerprint: string }> = {};

  /** Runs the incus CLI against the remote `imgsrv`, with a fresh cache (it caches feeds for an hour). */
  let incus: IncusCli;
  const listed = async () => JSON.parse(await incus('image', 'list', 'imgsrv:', '--format', 'json')) as { fingerprint: string; architecture: string; type: string; aliases: { name: string }[]; properties: Record<string, string> }[];
  const fingerprintOf = async (ref: string) => /^Fingerprint: ([0-9a-f]{64})$/m.exec(await incus('image', 'info', `imgsrv:${ref}`))?.[1];
  const publish = async (version: string) => {
    const { disk, metadata } = await publishedVersion(api, IMAGE, version, { metadata: { properties: { os: 'Debian', release: 'bookworm', description: `Debian ${version} (bookworm)` } } });
    published[version] = { disk, metadata: metadata!, fingerprint: createHash('sha256').update(metadata!).update(disk).digest('hex') };
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'imgsrv-incus-'));
    const { certFile, keyFile, cert: ca } = selfSignedCert(work);
    server = await startServer({ dataDir: join(work, 'data'), env: { IMGSRV_TLS_CERT: certFile, IMGSRV_TLS_KEY: keyFile } });
    api = apiClient({ ...server, ca });
    incus = await incusRemote(work, server.url, ca, 60_000);
  });
  after(async () => {
    await server?.stop();
    await removeDir(work);
  });

  it('lists each published version as a VM image whose fingerprint is the combined hash', async () => {
    await publish('12.4.0');
    assert.deepEqual((await listed()).map((i) => i.fingerprint), [published['12.4.0']!.fingerprint], 'the feed is valid after the first publish');
    await publish('12.5.0');
    const images = await listed();
    assert.equal(images.length, 2, 'the feed is valid after the second publish');
    for (const version of ['12.4.0', '12.5.0']) {
      const image = images.find((i) => i.fingerprint === published[version]!.fingerprint);
      assert.ok(image, `${version} is listed with fingerprint sha256(incus.tar.xz || disk)`);
      assert.equal(image.architecture, 'x86_64');
      assert.equal(image.type, 'virtual-machine');
      assert.equal(image.properties.os, 'debian');
      assert.equal(image.properties.release, 'bookworm');
      assert.match(image.properties.serial!, /^\d{8}_\d{4}$/);
    }
  });

  it('resolves imgsrv aliases, versions and latest-as-plain-name to the right images', async () => {
    assert.equal((await api.put(`/v1/images/${IMAGE}/aliases/latest`, { json: { version: '12.5.0' } })).status, 200);
    assert.equal((await api.put(`/v1/images/${IMAGE}/aliases/stable`, { json: { version: '12.5.0' } })).status, 200);
    const aliases = JSON.parse(await incus('image', 'alias', 'list', 'imgsrv:', '--format', 'json')) as { name: string; target: string }[];
    const target = Object.fromEntries(aliases.map((a) => [a.name, a.target]));
    const newest = published['12.5.0']!.fingerprint;
    const older = published['12.4.0']!.fingerprint;
    for (const [name, fingerprint] of [
      [IMAGE, newest],
      [`${IMAGE}/latest`, newest],
      [`${IMAGE}/stable`, newest],
      [`${IMAGE}/12.5.0`, newest],
      [`${IMAGE}/12.4.0`, older],
    ] as const) {
      assert.equal(target[name], fingerprint, `alias ${name}`);
    }
    assert.equal(await fingerprintOf(`${IMAGE}/latest`), newest, 'latest is the newest');
    assert.equal(await fingerprintOf(IMAGE), newest);
  });

  it('follows stable back to the older version, and exports it byte for byte', async () => {
    assert.equal((await api.put(`/v1/images/${IMAGE}/aliases/stable`, { json: { version: '12.4.0' } })).status, 200);
    const older = published['12.4.0']!;
    assert.equal(await fingerprintOf(`${IMAGE}/stable`), older.fingerprint);
    assert.equal(await fingerprintOf(`${IMAGE}/latest`), published['12.5.0']!.fingerprint, 'latest did not move');

    const out = join(work, 'export');
    await mkdir(out);
    await incus('image', 'export', `imgsrv:${IMAGE}/stable`, out);
    const files = await Promise.all((await readdir(out)).map((f) => readFile(join(out, f))));
    assert.equal(files.length, 2, 'a split image: metadata and disk');
    assert.ok(files.some((f) => f.equals(older.metadata)), 'the exported metadata is the uploaded incus.tar.xz');
    assert.ok(files.some((f) => f.equals(older.disk)), 'the exported disk is the uploaded qcow2');
  });

  it('drops a deleted alias', async () => {
    assert.equal((await api.delete(`/v1/images/${IMAGE}/aliases/stable`)).status, 204);
    const aliases = (JSON.parse(await incus('image', 'alias', 'list', 'imgsrv:', '--format', 'json')) as { name: string }[]).map((a) => a.name);
    assert.ok(!aliases.includes(`${IMAGE}/stable`));
    assert.ok(aliases.includes(`${IMAGE}/latest`));
  });
});
