import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { random } from '../helpers/bytes.ts';
import { publishedVersion } from '../helpers/catalog.ts';
import { createOciTools } from '../helpers/oci-tools.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes } from '../helpers/uploads.ts';

async function toolsFor(t: TestContext) {
  const tools = await createOciTools();
  t.after(() => tools.cleanup());
  return tools;
}

// One store for both worlds: a published imgsrv version is an OCI artifact, and an OCI layer is a CAS blob.
describe('imgsrv versions and OCI artifacts share one store (oras)', () => {
  const ctx = useServer();

  it('oras pulls a published version by alias: its artifact and attachments as files, byte-equal', async (t) => {
    const { disk, metadata } = await publishedVersion(ctx.api, 'debian-oras', '12.1');
    assert.equal((await ctx.api.put('/v1/images/debian-oras/aliases/latest', { json: { version: '12.1' } })).status, 200);
    const tools = await toolsFor(t);
    const host = new URL(ctx.server.url).host;
    const out = join(tools.work, 'pulled');
    await tools.oras(['pull', '--plain-http', '-o', out, `${host}/debian-oras:latest`]);
    const files = (await readdir(out)).sort();
    assert.deepEqual(files, ['debian-oras_12.1_debian_amd64_default.qcow2', 'incus.tar.xz']);
    assert.ok((await readFile(join(out, files[0]!))).equals(disk), 'the disk is the published one');
    assert.ok((await readFile(join(out, 'incus.tar.xz'))).equals(metadata!), 'and its Incus metadata');
    const manifest = JSON.parse((await tools.oras(['manifest', 'fetch', '--plain-http', `${host}/debian-oras:12.1`])).stdout);
    assert.equal(manifest.artifactType, 'application/vnd.imgsrv.version.v1+json');
    const tags = (await tools.oras(['repo', 'tags', '--plain-http', `${host}/debian-oras`])).stdout.trim().split('\n');
    assert.deepEqual(tags, ['12.1', 'latest']);

    // The projection is read-only: a push into it is refused.
    await writeFile(join(tools.work, 'x.txt'), 'x');
    const denied = await tools.oras(['push', '--plain-http', '-u', 'ci', '-p', ctx.server.token, '--concurrency', '1', `${host}/debian-oras:evil`, 'x.txt'], { expect: 'failure', cwd: tools.work });
    assert.match(denied.stderr, /denied|read-only/i);
  });

  it('an OCI layer is a CAS blob: readable through /v1 and usable as an artifact without re-upload', async (t) => {
    const tools = await toolsFor(t);
    const host = new URL(ctx.server.url).host;
    const bytes = random(3 * 1024 * 1024);
    await writeFile(join(tools.work, 'disk.raw'), bytes);
    const pushed = await tools.oras(['push', '--plain-http', '-u', 'ci', '-p', ctx.server.token, `${host}/team/raw-disk:v1`, 'disk.raw:application/octet-stream'], { cwd: tools.work });
    assert.match(pushed.stdout + pushed.stderr, /Pushed/);
    const { digest, session } = await uploadBytes(ctx.api, bytes);
    assert.equal(session.state, 'ready', 'the digest is known at once: no bytes move');
    assert.ok((await ctx.api.get(`/v1/blobs/${digest}`)).bytes.equals(bytes));
    await ctx.api.post('/v1/images', { name: 'from-oci' });
    await ctx.api.post('/v1/images/from-oci/versions', { version: '1' });
    const artifact = await ctx.api.post('/v1/images/from-oci/versions/1/artifacts', { operating_system: 'debian', architecture: 'amd64', format: 'raw', primary_blob_digest: digest, primary_blob_size_bytes: bytes.length, primary_media_type: 'application/octet-stream' });
    assert.equal(artifact.status, 201);
  });
});
