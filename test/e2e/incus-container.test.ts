import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitForJob } from '../helpers/catalog.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { makeIncusTarXz, makeQcow2, makeSquashfs } from '../helpers/images.ts';
import { incusRemote, type IncusCli } from '../helpers/incus.ts';
import { removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { selfSignedCert } from '../helpers/tls.ts';
import { uploadBytes } from '../helpers/uploads.ts';

const IMAGE = 'debian-bookworm';
const PROPERTIES = { os: 'Debian', release: 'bookworm', description: 'Debian 12 (bookworm)', variant: 'default' };

interface Listed {
  fingerprint: string;
  architecture: string;
  type: string;
  aliases: { name: string }[] | null;
  properties: Record<string, string>;
}

/** Root bytes and the incus.tar.xz of one published artifact, and the fingerprint Incus must show. */
interface Published {
  root: Buffer;
  metadata: Buffer;
  fingerprint: string;
}

describe('the real incus client reads container images (squashfs) from the feed', () => {
  let work: string;
  let server: ServerHandle;
  let api: ApiClient;
  const container: Record<string, Published> = {};
  const vm: Record<string, Published> = {};

  /** Runs the incus CLI against the remote `imgsrv`, with a fresh cache (it caches feeds for an hour). */
  let incus: IncusCli;
  const listed = async (...filters: string[]) => JSON.parse(await incus('image', 'list', 'imgsrv:', ...filters, '--format', 'json')) as Listed[];
  const aliasTargets = async () => {
    const aliases = JSON.parse(await incus('image', 'alias', 'list', 'imgsrv:', '--format', 'json')) as { name: string; target: string; type: string }[];
    return new Map(aliases.map((a) => [`${a.type} ${a.name}`, a.target]));
  };
  const fingerprintOf = async (ref: string, ...flags: string[]) => /^Fingerprint: ([0-9a-f]{64})$/m.exec(await incus('image', 'info', `imgsrv:${ref}`, ...flags))?.[1];
  /** Exports REF into a fresh directory and returns the files written. */
  const exported = async (ref: string, ...flags: string[]) => {
    const out = await mkdtemp(join(work, 'export-'));
    await incus('image', 'export', `imgsrv:${ref}`, out, ...flags);
    return Promise.all((await readdir(out)).map((f) => readFile(join(out, f))));
  };

  /** One artifact with its incus.tar.xz, through the /v1 publishing flow (upload, add, attach). */
  const addArtifact = async (version: string, format: 'qcow2' | 'squashfs', root: Buffer, metadata: Buffer) => {
    const { digest } = await uploadBytes(api, root);
    const artifact = await api.post(`/v1/images/${IMAGE}/versions/${version}/artifacts`, {
      operating_system: 'debian',
      architecture: 'amd64',
      format,
      primary_blob_digest: digest,
      primary_blob_size_bytes: root.length,
      primary_media_type: format === 'squashfs' ? 'application/vnd.squashfs' : 'application/x-qemu-disk',
    });
    assert.equal(artifact.status, 201, JSON.stringify(artifact.json));
    const m = await uploadBytes(api, metadata);
    const body = { name: 'incus.tar.xz', blob_digest: m.digest, blob_size_bytes: metadata.length, media_type: 'application/x-incus-metadata' };
    const attached = await api.post(`/v1/images/${IMAGE}/versions/${version}/artifacts/${artifact.json.id}/attachments`, body);
    assert.equal(attached.status, 201, JSON.stringify(attached.json));
    return { root, metadata, fingerprint: createHash('sha256').update(metadata).update(root).digest('hex') };
  };

  /** A version holding a container image and, when asked, a VM image too (as a compose build makes). */
  const publish = async (version: string, opts: { vm: boolean }) => {
    assert.equal((await api.post(`/v1/images/${IMAGE}/versions`, { version })).status, 201);
    container[version] = await addArtifact(version, 'squashfs', await makeSquashfs(), await makeIncusTarXz({ container: true, properties: PROPERTIES }));
    if (opts.vm) vm[version] = await addArtifact(version, 'qcow2', await makeQcow2(4), await makeIncusTarXz({ properties: PROPERTIES }));
    const job = await api.post(`/v1/images/${IMAGE}/versions/${version}/publish`);
    assert.equal(job.status, 202);
    const done = await waitForJob(api, job.json.id);
    assert.equal(done.state, 'succeeded', JSON.stringify(done));
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'imgsrv-incus-ct-'));
    const { certFile, keyFile, cert: ca } = selfSignedCert(work);
    server = await startServer({ dataDir: join(work, 'data'), env: { IMGSRV_TLS_CERT: certFile, IMGSRV_TLS_KEY: keyFile } });
    api = apiClient({ ...server, ca });
    assert.equal((await api.post('/v1/images', { name: IMAGE })).status, 201);
    incus = await incusRemote(work, server.url, ca, 60_000);
  });
  after(async () => {
    await server?.stop();
    await removeDir(work);
  });

  it('refuses, at attach time, an incus.tar.xz for another architecture on a squashfs artifact (412), as on a qcow2', async () => {
    assert.equal((await api.post(`/v1/images/${IMAGE}/versions`, { version: 'draft-only' })).status, 201);
    const rootfs = await makeSquashfs();
    const { digest } = await uploadBytes(api, rootfs);
    const artifact = await api.post(`/v1/images/${IMAGE}/versions/draft-only/artifacts`, {
      operating_system: 'debian',
      architecture: 'amd64',
      format: 'squashfs',
      primary_blob_digest: digest,
      primary_blob_size_bytes: rootfs.length,
      primary_media_type: 'application/vnd.squashfs',
    });
    assert.equal(artifact.status, 201, JSON.stringify(artifact.json));
    const metadata = await makeIncusTarXz({ container: true, architecture: 'aarch64' });
    const m = await uploadBytes(api, metadata);
    const body = { name: 'incus.tar.xz', blob_digest: m.digest, blob_size_bytes: metadata.length, media_type: 'application/x-incus-metadata' };
    const refused = await api.post(`/v1/images/${IMAGE}/versions/draft-only/artifacts/${artifact.json.id}/attachments`, body);
    assert.equal(refused.status, 412);
    assert.match(refused.json.detail, /metadata\.yaml is for architecture aarch64/);
  });

  it('lists a squashfs artifact published through /v1 as a container image whose fingerprint is sha256(incus.tar.xz || squashfs)', async () => {
    await publish('12.4.0', { vm: false });
    const images = await listed();
    assert.equal(images.length, 1);
    const [image] = images;
    assert.equal(image!.fingerprint, container['12.4.0']!.fingerprint);
    assert.equal(image!.type, 'container');
    assert.equal(image!.architecture, 'x86_64');
    assert.equal(image!.properties.type, 'squashfs');
    assert.equal(image!.properties.os, 'debian');
    assert.equal(image!.properties.release, 'bookworm');
    assert.match(image!.properties.serial!, /^\d{8}_\d{4}$/);
  });

  it('keeps a container and a VM image of one version apart: both listed, type=container finds the container only', async () => {
    await publish('12.5.0', { vm: true });
    const images = await listed();
    assert.deepEqual(
      images.map((i) => `${i.type} ${i.fingerprint}`).sort(),
      [`container ${container['12.4.0']!.fingerprint}`, `container ${container['12.5.0']!.fingerprint}`, `virtual-machine ${vm['12.5.0']!.fingerprint}`].sort(),
    );
    const containers = await listed('type=container');
    assert.deepEqual(containers.map((i) => i.fingerprint).sort(), [container['12.4.0']!.fingerprint, container['12.5.0']!.fingerprint].sort());
    assert.deepEqual((await listed('type=virtual-machine')).map((i) => i.fingerprint), [vm['12.5.0']!.fingerprint]);
  });

  it('gives a container image the aliases a VM image gets, told apart by type', async () => {
    assert.equal((await api.put(`/v1/images/${IMAGE}/aliases/latest`, { json: { version: '12.5.0' } })).status, 200);
    assert.equal((await api.put(`/v1/images/${IMAGE}/aliases/stable`, { json: { version: '12.4.0' } })).status, 200);
    const target = await aliasTargets();
    const [newest, older, machine] = [container['12.5.0']!.fingerprint, container['12.4.0']!.fingerprint, vm['12.5.0']!.fingerprint];
    for (const [name, fingerprint] of [
      [`container ${IMAGE}`, newest],
      [`container ${IMAGE}/latest`, newest],
      [`container ${IMAGE}/12.5.0`, newest],
      [`container ${IMAGE}/12.4.0`, older],
      [`container ${IMAGE}/stable`, older],
      [`virtual-machine ${IMAGE}`, machine],
      [`virtual-machine ${IMAGE}/latest`, machine],
      [`virtual-machine ${IMAGE}/12.5.0`, machine],
    ] as const) {
      assert.equal(target.get(name), fingerprint, `alias ${name}`);
    }
    assert.ok(!target.has(`virtual-machine ${IMAGE}/stable`), 'stable is on a version without a VM image');
    // Without --vm the client resolves a name as a container first, then as a VM.
    assert.equal(await fingerprintOf(IMAGE), newest);
    assert.equal(await fingerprintOf(IMAGE, '--vm'), machine);
  });

  it('exports the container alias byte for byte (the client verifies both hashes), and the VM one with --vm', async () => {
    const files = await exported(`${IMAGE}/stable`);
    assert.equal(files.length, 2, 'a split image: metadata and squashfs');
    assert.ok(files.some((f) => f.equals(container['12.4.0']!.metadata)), 'the exported metadata is the uploaded incus.tar.xz');
    assert.ok(files.some((f) => f.equals(container['12.4.0']!.root)), 'the exported rootfs is the uploaded squashfs');

    const latest = await exported(`${IMAGE}/latest`);
    assert.ok(latest.some((f) => f.equals(container['12.5.0']!.root)), 'latest without --vm is the newest container image');
    assert.ok(latest.some((f) => f.equals(container['12.5.0']!.metadata)));

    const machine = await exported(`${IMAGE}/latest`, '--vm');
    assert.equal(machine.length, 2);
    assert.ok(machine.some((f) => f.equals(vm['12.5.0']!.root)), 'with --vm the same name exports the VM disk');
    assert.ok(machine.some((f) => f.equals(vm['12.5.0']!.metadata)));
  });
});
