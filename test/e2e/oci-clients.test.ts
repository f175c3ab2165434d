import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { readLayoutBlobs, writeOciLayout } from '../helpers/oci-layout.ts';
import { createOciTools, startReferenceRegistry, type OciTools } from '../helpers/oci-tools.ts';
import { loggedErrors, removeDir, startServer } from '../helpers/server.ts';

/**
 * skopeo, podman and oras, unmodified, against imgsrv's /v2 registry (issue 13, "Must show").
 * `IMGSRV_OCI_E2E_PEER=distribution` runs the same cases against Debian's docker-registry instead:
 * they pass there too, so a failure against imgsrv is imgsrv's, not the harness's. The two differ
 * only where distribution 2.8 lacks what the issue asks for: the referrers API and anonymous pull.
 */

interface RegistryUnderTest {
  /** `127.0.0.1:PORT`, plain HTTP. */
  host: string;
  username: string;
  password: string;
  stop(): Promise<void>;
}

interface Peer {
  name: string;
  /** Pulls work without credentials (imgsrv: IMGSRV_OCI_ANONYMOUS_PULL, on by default). */
  anonymousPull: boolean;
  /** `GET /v2/<name>/referrers/<digest>` exists, so `oras attach` writes no `sha256-<hex>` fallback tag. */
  referrersApi: boolean;
  start(): Promise<RegistryUnderTest>;
}

const PEERS: Record<string, Peer> = {
  imgsrv: {
    name: 'imgsrv',
    anonymousPull: true,
    referrersApi: true,
    async start() {
      const server = await startServer();
      return {
        host: new URL(server.url).host,
        // Basic auth: any user name, an imgsrv API token (here the bootstrap admin's) as the password.
        username: 'ci',
        password: server.token,
        async stop() {
          await server.stop();
          await removeDir(server.dataDir);
          assert.deepEqual(loggedErrors(server), [], 'the server logged errors');
        },
      };
    },
  },
  distribution: { name: "Debian's docker-registry", anonymousPull: false, referrersApi: false, start: () => startReferenceRegistry() },
};

const peer = PEERS[process.env.IMGSRV_OCI_E2E_PEER ?? 'imgsrv'];
if (!peer) throw new Error(`IMGSRV_OCI_E2E_PEER must be one of ${Object.keys(PEERS).join(', ')}`);
const { anonymousPull, referrersApi } = peer;

/** What the tools print when the registry answered 401 (a missing or refused credential). */
const UNAUTHORIZED = /unauthorized|authentication required|invalid username\/password/i;
const ORAS_UNAUTHORIZED = /basic credential not found|unauthorized|401/i;

/** A fresh client environment for one test, removed (and its tools killed) when the test ends. */
async function toolsFor(t: TestContext): Promise<OciTools> {
  const tools = await createOciTools();
  t.after(() => tools.cleanup());
  return tools;
}

const parse = (r: { stdout: string }) => JSON.parse(r.stdout);

describe(`skopeo, podman and oras against ${peer.name}`, () => {
  let running: RegistryUnderTest | undefined;
  const registry = () => running!;
  before(async () => {
    running = await peer.start();
  });
  after(async () => {
    await running?.stop();
  });

  it('skopeo copies a multi-layer image in and back out byte for byte, inspects, lists and deletes it', async (t) => {
    const { host, username, password } = registry();
    const tools = await toolsFor(t);
    const image = await writeOciLayout({ dir: join(tools.work, 'layout'), tag: 'v1', seed: 'skopeo' });
    const ref = `docker://${host}/e2e/skopeo:v1`;
    const creds = ['--tls-verify=false', '--creds', `${username}:${password}`];

    await tools.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${username}:${password}`, `oci:${image.dir}:v1`, ref]);
    const inspected = parse(await tools.skopeo(['inspect', ...creds, ref]));
    assert.equal(inspected.Digest, image.manifestDigest, 'the registry names the manifest by the digest of the bytes pushed');
    assert.deepEqual(inspected.Layers, image.layerDigests);
    const raw = await tools.skopeo(['inspect', '--raw', ...creds, ref]);
    assert.ok(raw.stdoutBytes.equals(image.manifest), 'the manifest is served byte-exact');
    assert.deepEqual(parse(await tools.skopeo(['list-tags', ...creds, `docker://${host}/e2e/skopeo`])).Tags, ['v1']);

    const out = join(tools.work, 'out');
    await tools.skopeo(['copy', '--src-tls-verify=false', '--src-creds', `${username}:${password}`, ref, `oci:${out}:v1`]);
    // readLayoutBlobs checks every file against its digest, so equal digest sets mean equal bytes.
    assert.deepEqual([...(await readLayoutBlobs(out)).keys()].sort(), [...image.blobs.keys()].sort(), 'config, layers and manifest come back unchanged');
    assert.equal(JSON.parse(await readFile(join(out, 'index.json'), 'utf8')).manifests[0].digest, image.manifestDigest);

    await tools.skopeo(['delete', ...creds, ref]);
    const gone = await tools.skopeo(['inspect', ...creds, ref], { expect: 'failure' });
    assert.match(gone.stderr, /manifest unknown|not found/i, 'the deleted tag no longer resolves');
  });

  it('podman logs in with a password on stdin, refuses a wrong one, pushes, pulls back and logs out', async (t) => {
    const { host, username, password } = registry();
    const tools = await toolsFor(t);
    const tls = '--tls-verify=false';

    await tools.podman(['login', tls, '-u', username, '--password-stdin', host], { input: password });
    assert.equal((await tools.podman(['login', '--get-login', host])).stdout.trim(), username, 'the login is stored');
    const other = join(tools.work, 'other-auth.json');
    const refused = await tools.podman(['login', tls, '--authfile', other, '-u', username, '--password-stdin', host], { input: `wrong-${password}`, expect: 'failure' });
    assert.match(refused.stderr, UNAUTHORIZED, 'a wrong password is refused by the registry');

    // From an OCI layout into vfs storage: podman keeps layers uncompressed and gzips them while it pushes.
    const image = await writeOciLayout({ dir: join(tools.work, 'layout'), tag: 'v1', seed: 'podman' });
    const imageId = image.configDigest.slice('sha256:'.length);
    await tools.podman(['pull', '--quiet', `oci:${image.dir}:v1`]);
    await tools.podman(['tag', imageId, 'localhost/e2e/podman:v1']);
    const digestFile = join(tools.work, 'pushed.digest');
    await tools.podman(['push', tls, '--digestfile', digestFile, 'localhost/e2e/podman:v1', `${host}/e2e/podman:v1`]);
    const pushed = (await readFile(digestFile, 'utf8')).trim();
    assert.match(pushed, /^sha256:[0-9a-f]{64}$/);

    await tools.podman(['rmi', '--force', imageId]);
    assert.equal((await tools.podman(['images', '--quiet'])).stdout.trim(), '', 'nothing is left locally');
    const pulled = (await tools.podman(['pull', tls, '--quiet', `${host}/e2e/podman:v1`])).stdout.trim();
    assert.equal(pulled, imageId, 'the pulled image has the pushed config (image id)');
    assert.equal((await tools.podman(['image', 'inspect', '--format', '{{.Digest}}', `${host}/e2e/podman:v1`])).stdout.trim(), pushed, 'and the pushed manifest');

    await tools.podman(['logout', host]);
    await tools.podman(['login', '--get-login', host], { expect: 'failure' });
  });

  it(`oras pushes a typed artifact, attaches a referrer, discovers it ${referrersApi ? 'through the referrers API' : 'through the fallback tag'} and pulls byte for byte`, async (t) => {
    const { host, username, password } = registry();
    const tools = await toolsFor(t);
    const plain = '--plain-http';
    const files = join(tools.work, 'files');
    await mkdir(files);
    const big = randomBytes(20 * 1024 * 1024);
    const notes = Buffer.from('a second, small file of the artifact\n');
    await writeFile(join(files, 'big.bin'), big);
    await writeFile(join(files, 'notes.txt'), notes);
    await writeFile(join(files, 'sig.json'), JSON.stringify({ signature: randomBytes(32).toString('base64') }));
    const ref = `${host}/e2e/oras:v1`;

    await tools.oras(['login', plain, '-u', username, '--password-stdin', host], { input: password });
    // oras stores the files' relative paths as their titles: run it in the files' directory.
    await tools.oras(['push', plain, '--artifact-type', 'application/vnd.imgsrv.test.v1', ref, 'big.bin:application/octet-stream', 'notes.txt:text/plain'], { cwd: files });
    const manifest = parse(await tools.oras(['manifest', 'fetch', plain, ref]));
    assert.equal(manifest.artifactType, 'application/vnd.imgsrv.test.v1');
    assert.deepEqual(manifest.layers.map((l: any) => [l.annotations['org.opencontainers.image.title'], l.size]), [['big.bin', big.length], ['notes.txt', notes.length]]);
    const subject = (await tools.oras(['resolve', plain, ref])).stdout.trim();

    await tools.oras(['attach', plain, '--artifact-type', 'application/vnd.example.signature.v1+json', ref, 'sig.json:application/json'], { cwd: files });
    const viaApi = ['discover', plain, '--distribution-spec', 'v1.1-referrers-api', '--format', 'json', ref];
    const fallbackTag = `sha256-${subject.slice('sha256:'.length)}`;
    const tags = (await tools.oras(['repo', 'tags', plain, `${host}/e2e/oras`])).stdout.split('\n').filter(Boolean);
    if (referrersApi) {
      const found = parse(await tools.oras(viaApi)).manifests;
      assert.deepEqual(found.map((m: any) => m.artifactType), ['application/vnd.example.signature.v1+json'], 'the referrers API lists the signature');
      assert.deepEqual(tags, ['v1'], 'no fallback tag: oras saw the referrers API (OCI-Subject on the manifest PUT)');
    } else {
      const refused = await tools.oras(viaApi, { expect: 'failure' });
      assert.match(refused.stderr, /referrers API/i, 'the registry has no referrers API');
      const found = parse(await tools.oras(['discover', plain, '--format', 'json', ref])).manifests;
      assert.deepEqual(found.map((m: any) => m.artifactType), ['application/vnd.example.signature.v1+json'], 'the fallback tag lists the signature');
      assert.deepEqual(tags.sort(), [fallbackTag, 'v1'].sort(), 'oras wrote the fallback tag');
    }

    const out = join(tools.work, 'pulled');
    await tools.oras(['pull', plain, '-o', out, ref]);
    assert.ok((await readFile(join(out, 'big.bin'))).equals(big), 'the 20 MiB file comes back byte-equal');
    assert.ok((await readFile(join(out, 'notes.txt'))).equals(notes), 'the small file comes back byte-equal');
  });

  it(`${anonymousPull ? 'serves' : 'refuses'} pulls without credentials and refuses pushes without them`, async (t) => {
    const { host, username, password } = registry();
    const tools = await toolsFor(t);
    const image = await writeOciLayout({ dir: join(tools.work, 'layout'), tag: 'v1', seed: 'anonymous' });
    const ref = `docker://${host}/e2e/anonymous:v1`;
    await tools.skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `${username}:${password}`, `oci:${image.dir}:v1`, ref]);
    const expect = anonymousPull ? 'success' : 'failure';

    const inspected = await tools.skopeo(['inspect', '--tls-verify=false', '--no-creds', ref], { expect });
    if (anonymousPull) assert.equal(parse(inspected).Digest, image.manifestDigest);
    else assert.match(inspected.stderr, UNAUTHORIZED);
    // oras without a login: no credentials anywhere in this environment.
    const pulled = await tools.oras(['manifest', 'fetch', '--plain-http', `${host}/e2e/anonymous:v1`], { expect });
    if (anonymousPull) assert.ok(pulled.stdoutBytes.equals(image.manifest));
    else assert.match(pulled.stderr, ORAS_UNAUTHORIZED);

    const push = await tools.skopeo(['copy', '--dest-tls-verify=false', '--dest-no-creds', `oci:${image.dir}:v1`, `docker://${host}/e2e/anonymous:v2`], { expect: 'failure' });
    assert.match(push.stderr, UNAUTHORIZED, 'skopeo cannot push anonymously');
    await writeFile(join(tools.work, 'note.txt'), 'anonymous\n');
    // One blob at a time: oras 1.2 panics ("compare and swap of inconsistently typed value") when
    // its concurrent blob pushes fail in different ways, which an anonymous push to a registry
    // that serves anonymous reads provokes (one HEAD succeeds, one POST is refused).
    const orasPush = await tools.oras(['push', '--concurrency', '1', '--plain-http', `${host}/e2e/anonymous:v3`, 'note.txt'], { expect: 'failure' });
    assert.match(orasPush.stderr, ORAS_UNAUTHORIZED, 'oras cannot push anonymously');
    const creds = ['--tls-verify=false', '--creds', `${username}:${password}`];
    assert.deepEqual(parse(await tools.skopeo(['list-tags', ...creds, `docker://${host}/e2e/anonymous`])).Tags, ['v1'], 'the refused pushes left no tag');
  });
});
