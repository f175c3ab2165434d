import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { COMPOSE_ERRORS } from '../../src/domain/compose.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { composeClient, type ComposeClient } from '../helpers/compose-api.ts';
import { BUILD_TIMEOUT_MS, COMPOSE_TEST_CACHE, followLog, leftIn, processesUnder, waitForCompose, waitForLogLine } from '../helpers/compose-build.ts';
import { incusRemote, type IncusCli } from '../helpers/incus.ts';
import { removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { selfSignedCert } from '../helpers/tls.ts';

const idOf = (code: string) => COMPOSE_ERRORS.find((e) => e.code === code)!.id;
const sha256 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('sha256')).digest('hex');

/**
 * Real builds: mmdebstrap, the VM layer, the disk, a Secure Boot boot test under QEMU, and the
 * real incus client reading what was published. The base rootfs is cached between runs
 * (COMPOSE_TEST_CACHE), so a warm run builds from the package cache's tarball onwards.
 */
describe('composes build real Debian images, boot-test them and publish them', { timeout: 4 * BUILD_TIMEOUT_MS }, () => {
  let work: string;
  let ca: string;
  let tls: { IMGSRV_TLS_CERT: string; IMGSRV_TLS_KEY: string };
  let server: ServerHandle;
  let api: ApiClient;
  let composes: ComposeClient;
  const workDir = () => join(server.dataDir, 'compose', 'work');

  const start = async (env: Record<string, string> = {}, dataDir = join(work, 'data')) => {
    server = await startServer({ dataDir, token: server?.token, env: { ...tls, IMGSRV_COMPOSE_CACHE_DIR: COMPOSE_TEST_CACHE, IMGSRV_JOB_LEASE: '10', ...env } });
    api = apiClient({ ...server, ca });
    composes = composeClient({ ...server, ca });
  };

  let incus: IncusCli;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'imgsrv-compose-'));
    const cert = selfSignedCert(work);
    ca = cert.cert;
    tls = { IMGSRV_TLS_CERT: cert.certFile, IMGSRV_TLS_KEY: cert.keyFile };
    await start();
    incus = await incusRemote(work, server.url, ca);
  });
  after(async () => {
    await server?.stop();
    if (work) await removeDir(work);
  });

  const post = async (body: unknown) => {
    const res = await composes.post('/compose', body);
    assert.equal(res.status, 201, res.text);
    return res.json.id as string;
  };

  it('builds a debian-12 guest image and container image with a package; the boot marker is seen; both are published, aliased and served to incus', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const id = await post({
      distribution: 'debian-12',
      image_requests: [
        { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'composed', version: '12.0.1' } },
        { architecture: 'x86_64', image_type: 'incus-container', upload_options: { image: 'composed', version: '12.0.1' } },
      ],
      customizations: { packages: ['tree'] },
    });
    const log = followLog(composes, id);
    const { status, seen } = await waitForCompose(composes, id);
    const text = await log;
    assert.equal(status.status, 'success', `${JSON.stringify(status.image_status.error)}\n${text.split('\n').slice(-40).join('\n')}`);
    assert.deepEqual(seen.filter((s) => s !== 'pending'), ['building', 'uploading', 'success'], `states seen: ${seen.join(' → ')}`);
    assert.match(text, /\[boot-test\] marker seen after [\d.]+ s/);

    const metadata = await composes.get(`/composes/${id}/metadata`);
    assert.equal(metadata.status, 200);
    const tree = metadata.json.packages.find((p: { name: string }) => p.name === 'tree');
    assert.equal(tree.type, 'deb', 'the requested package is installed (dpkg status of the built root)');
    assert.ok(metadata.json.packages.some((p: { name: string }) => p.name.startsWith('linux-image-')), 'the VM packages are listed');
    const { artifacts } = metadata.json.imgsrv;
    assert.deepEqual(artifacts.map((a: { format: string }) => a.format), ['qcow2', 'squashfs']);

    const manifest = (await api.get('/v1/images/composed/versions/12.0.1')).json;
    assert.equal(manifest.version.state, 'published');
    assert.equal((await api.get('/v1/images/composed/aliases/latest')).json.version, '12.0.1');
    const fingerprints: Record<string, string> = {};
    for (const a of artifacts) {
      const entry = manifest.artifacts.find((x: { artifact: { format: string } }) => x.artifact.format === a.format);
      assert.equal(entry.artifact.primary_blob_digest, a.digest);
      const attachment = entry.attachments.find((x: { name: string }) => x.name === 'incus.tar.xz');
      assert.equal(attachment.blob_digest, a.incus_metadata_digest);
      const bytes = async (digest: string) => (await api.get(`/v1/blobs/${digest}`)).bytes;
      fingerprints[a.format] = sha256(await bytes(a.incus_metadata_digest), await bytes(a.digest));
    }

    const listed = JSON.parse(await incus('image', 'list', 'imgsrv:', '--format', 'json')) as { fingerprint: string; type: string }[];
    assert.deepEqual(
      listed.map((i) => [i.type, i.fingerprint]).sort(),
      [['container', fingerprints.squashfs], ['virtual-machine', fingerprints.qcow2]].sort(),
      'incus lists the VM and the container with their combined fingerprints',
    );
    for (const [flag, format] of [[['--vm'], 'qcow2'], [[], 'squashfs']] as const) {
      const out = await mkdtemp(join(work, 'export-'));
      await incus('image', 'export', 'imgsrv:composed/latest', out, ...flag);
      const files = await Promise.all((await readdir(out)).map((f) => readFile(join(out, f))));
      assert.equal(files.length, 2, `a split ${format} image: metadata and rootfs`);
      assert.ok([sha256(files[0]!, files[1]!), sha256(files[1]!, files[0]!)].includes(fingerprints[format]!), `the exported ${format} image verifies`);
    }
    assert.deepEqual(await leftIn(workDir()), [], 'no workspace or output is left');
  });

  it('fails a compose whose package does not exist, with the apt error in its log; nothing is published', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const id = await post({
      distribution: 'debian-12',
      image_request: { architecture: 'x86_64', image_type: 'incus-container', upload_options: { image: 'broken', version: '1' } },
      customizations: { packages: ['no-such-package-imgsrv'] },
    });
    const { status } = await waitForCompose(composes, id);
    assert.equal(status.status, 'failure');
    assert.equal(status.image_status.error.id, idOf('package_unavailable'));
    const log = (await composes.get(`/composes/${id}/logs`)).json.image_builds[0].lines.join('\n');
    assert.match(log, /Unable to locate package no-such-package-imgsrv/);
    assert.equal((await api.get('/v1/images/broken/versions/1')).status, 404);
    assert.equal((await composes.get(`/composes/${id}/metadata`)).status, 409);
  });

  it('cancels a running build: its processes and files are gone and it fails as cancelled', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const id = await post({ distribution: 'debian-12', image_request: { architecture: 'x86_64', image_type: 'incus-container', upload_options: { image: 'cancelled', version: '1' } }, customizations: { packages: ['tree'] } });
    await waitForLogLine(composes, id, /^== (extract|rootfs)$/);
    const cancelled = await composes.delete(`/composes/${id}`);
    assert.equal(cancelled.status, 200);
    const { status } = await waitForCompose(composes, id, 60_000);
    assert.equal(status.status, 'failure');
    assert.equal(status.image_status.error.id, idOf('cancelled'));
    assert.deepEqual(processesUnder(workDir()), []);
    assert.deepEqual(await leftIn(workDir()), []);
    assert.equal((await api.get('/v1/images/cancelled/versions/1')).status, 404);
  });

  it('survives SIGKILL of the server mid-build: after the restart no process or directory of the dead build is left and the compose completes', { timeout: BUILD_TIMEOUT_MS }, async () => {
    const id = await post({ distribution: 'debian-12', image_request: { architecture: 'x86_64', image_type: 'incus-container', upload_options: { image: 'killed', version: '1' } }, customizations: { packages: ['tree'] } });
    await waitForLogLine(composes, id, /^== extract$/);
    const dir = workDir();
    await server.kill();
    const orphans = processesUnder(dir);
    await start();
    const { status } = await waitForCompose(composes, id);
    assert.equal(status.status, 'success', `${JSON.stringify(status.image_status.error)} (orphans at the kill: ${orphans.length})`);
    for (const orphan of orphans) assert.ok(!processesUnder(dir).includes(orphan), `orphan ${orphan} was killed`);
    assert.deepEqual(processesUnder(dir), []);
    assert.deepEqual(await leftIn(dir), []);
    assert.equal((await api.get('/v1/images/killed/versions/1')).json.version.state, 'published');
  });

  it('resumes a compose killed after its images were stored: they are published as built, with no second build', { timeout: BUILD_TIMEOUT_MS }, async () => {
    await server.stop();
    await start({ IMGSRV_FAILPOINTS: 'compose-stored' });
    const id = await post({ distribution: 'debian-12', image_request: { architecture: 'x86_64', image_type: 'incus-container', upload_options: { image: 'resumed', version: '1' } }, customizations: { packages: ['tree'] } });
    await server.waitForOutput(/failpoint reached: compose-stored/, BUILD_TIMEOUT_MS);
    await server.kill();
    await start();
    const { status } = await waitForCompose(composes, id);
    assert.equal(status.status, 'success', JSON.stringify(status.image_status.error));
    const lines = (await followLog(composes, id)).split('\n');
    assert.ok(lines.includes('== resuming: the images were built and stored before the restart'));
    assert.equal(lines.filter((l) => l === '== rootfs').length, 1, 'the images were built once');
    const { imgsrv } = (await composes.get(`/composes/${id}/metadata`)).json;
    const manifest = (await api.get('/v1/images/resumed/versions/1')).json;
    assert.equal(manifest.version.state, 'published');
    assert.equal(manifest.artifacts[0].artifact.primary_blob_digest, imgsrv.artifacts[0].digest);
    assert.deepEqual(await leftIn(workDir()), []);
  });

  it('fails a build whose image does not boot (a test-only broken kernel command line), with the serial console in its log', { timeout: BUILD_TIMEOUT_MS }, async () => {
    await server.stop();
    await start({ IMGSRV_FAILPOINTS: 'compose-break-boot' }, join(work, 'data-broken-boot'));
    const id = await post({ distribution: 'debian-12', image_request: { architecture: 'x86_64', image_type: 'guest-image', upload_options: { image: 'unbootable', version: '1' } }, customizations: { packages: ['tree'] } });
    const { status } = await waitForCompose(composes, id);
    assert.equal(status.status, 'failure');
    assert.equal(status.image_status.error.id, idOf('boot_test_failed'));
    assert.match(status.image_status.error.reason, /boot-test/);
    const log = (await composes.get(`/composes/${id}/logs`)).json.image_builds[0].lines.join('\n');
    assert.match(log, /\[serial\] /, 'the serial console is in the log');
    assert.equal((await api.get('/v1/images/unbootable/versions/1')).status, 404, 'nothing was published');
    assert.deepEqual(await leftIn(workDir()), []);
  });
});
