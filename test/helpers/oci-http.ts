import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { sha256 } from './bytes.ts';
import type { ApiClient } from './client.ts';
import type { ServerHandle } from './server.ts';
import { useServer } from './suite.ts';
import { principalToken as createPrincipalToken } from './principals.ts';

/**
 * Spec-derived OCI Distribution 1.1 tests talk to one registry per suite: imgsrv by default, or
 * Debian's docker-registry (distribution 2.8) with `IMGSRV_OCI_SPEC_PEER=distribution`, so the
 * tests themselves can be checked against an independent implementation before imgsrv has /v2.
 */
export const PEER = ((v = process.env.IMGSRV_OCI_SPEC_PEER ?? 'imgsrv') => {
  if (v !== 'imgsrv' && v !== 'distribution') throw new Error(`IMGSRV_OCI_SPEC_PEER must be imgsrv or distribution, not ${v}`);
  return v;
})();

/** True when the registry under test is imgsrv (behaviour distribution 2.8 lacks is asserted as usual). */
export const imgsrvOnly = PEER === 'imgsrv';

/**
 * Options for a case distribution 2.8 is known to fail: in distribution mode a todo (it runs and
 * is reported, but does not fail the run); against imgsrv an ordinary test.
 */
export const distributionFails = (what: string): { todo?: string } => (PEER === 'distribution' ? { todo: `distribution 2.8 ${what}` } : {});

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** The Accept header skopeo and podman send for manifests (REPORT 3.3). */
export const CLIENT_ACCEPT = [MT.ociManifest, MT.dockerManifest, 'application/vnd.docker.distribution.manifest.v1+prettyjws', MT.dockerList, MT.ociIndex].join(', ');

/** The error codes of the spec's table; distribution 2.8 also answers with its older ones. */
const SPEC_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED', 'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS',
];
const DISTRIBUTION_CODES = ['TAG_INVALID', 'MANIFEST_UNVERIFIED', 'RANGE_INVALID', 'PAGINATION_NUMBER_INVALID', 'UNKNOWN', 'UNAVAILABLE'];
export const ERROR_CODES = imgsrvOnly ? SPEC_CODES : [...SPEC_CODES, ...DISTRIBUTION_CODES];

export type Auth = 'writer' | 'anonymous' | { basic: [user: string, password: string] } | { bearer: string } | { header: string };

export interface OciRequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Defaults to `writer`: HTTP Basic with the suite's push credentials. */
  auth?: Auth;
  /**
   * Sent with node:http instead of fetch, on a connection of its own: the path goes out exactly
   * as written (no dot-segment or percent normalisation), any method may carry a body, and a
   * Content-Length in `headers` is sent as given (else the body's length).
   */
  raw?: boolean;
  /** Raw only: send the body with Transfer-Encoding: chunked and no Content-Length. */
  chunked?: boolean;
}

export interface OciResponse {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The parsed body when it is JSON. */
  json: any;
}

/** One registry under test; the fields are set once the suite starts. */
export interface Registry {
  peer: typeof PEER;
  url: string;
  /** The suite's Basic credentials: user `ci`, password an imgsrv API token (content-writer) or the htpasswd password. */
  user: string;
  password: string;
  /** imgsrv only: the server process and a /v1 client holding the bootstrap token. */
  server?: ServerHandle;
  api?: ApiClient;
  /**
   * Every answer is checked: never a 5xx, and every error with a body (not HEAD) is the spec's
   * envelope `{"errors":[{"code","message","detail"}]}` as `application/json` with known codes.
   */
  request(method: string, path: string, opts?: OciRequestOptions): Promise<OciResponse>;
}

export const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function authorization(reg: Registry, auth: Auth = 'writer'): string | undefined {
  if (auth === 'anonymous') return undefined;
  if (auth === 'writer') return basic(reg.user, reg.password);
  if ('basic' in auth) return basic(...auth.basic);
  if ('bearer' in auth) return `Bearer ${auth.bearer}`;
  return auth.header;
}

/** Asserts the spec's error envelope on `res` (see `Registry.request`). */
export function assertEnvelope(where: string, res: OciResponse): void {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json\s*(;|$)/, `${where}: an error must be application/json`);
  assert.ok(res.json && Array.isArray(res.json.errors) && res.json.errors.length > 0, `${where}: body must be {"errors":[...]}, got ${res.body.toString('utf8', 0, 300)}`);
  for (const e of res.json.errors) {
    assert.ok(ERROR_CODES.includes(e.code), `${where}: unknown error code ${JSON.stringify(e.code)}`);
    assert.equal(typeof e.message, 'string', `${where}: error message must be a string`);
    if (imgsrvOnly) assert.ok('detail' in e, `${where}: error needs a detail field`);
  }
}

async function send(reg: Registry, method: string, path: string, opts: OciRequestOptions): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const url = /^https?:/.test(path) ? path : `${reg.url}${path}`;
  const headers: Record<string, string> = { ...opts.headers };
  const auth = authorization(reg, opts.auth);
  if (auth !== undefined) headers.authorization = auth;
  if (!opts.raw) {
    const res = await fetch(url, { method, headers, body: opts.body, redirect: 'manual' });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }
  // node:http frames a GET body neither by length nor by chunks unless told: say it explicitly.
  const framed = Object.keys(headers).some((h) => /^(content-length|transfer-encoding)$/i.test(h));
  if (opts.chunked) headers['transfer-encoding'] = 'chunked';
  else if (opts.body !== undefined && !framed) headers['content-length'] = String(Buffer.byteLength(opts.body));
  const { hostname, port, protocol } = new URL(reg.url);
  // The path exactly as written: new URL() would resolve dot segments.
  const rawPath = path.replace(/^https?:\/\/[^/]+/, '');
  return new Promise((resolve, reject) => {
    // A connection of its own: a hostile request must not leave a shared socket in a bad state.
    const req = httpRequest({ protocol, hostname, port, method, path: rawPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) for (const one of [v ?? []].flat()) h.append(k, one);
        resolve({ status: res.statusCode!, headers: h, body: Buffer.concat(chunks) });
      });
    });
    req.on('error', reject);
    if (opts.chunked) {
      if (opts.body !== undefined && opts.body.length > 0) req.write(opts.body);
      req.end();
    } else req.end(opts.body);
  });
}

async function ociRequest(reg: Registry, method: string, path: string, opts: OciRequestOptions = {}): Promise<OciResponse> {
  const res = await send(reg, method, path, opts);
  const where = `${method} ${path.replace(reg.url, '')} → ${res.status}`;
  let json: any;
  if (/json/.test(res.headers.get('content-type') ?? '') && res.body.length > 0) {
    try {
      json = JSON.parse(res.body.toString('utf8'));
    } catch {
      assert.fail(`${where}: a JSON content type with a body that is not JSON: ${res.body.toString('utf8', 0, 200)}`);
    }
  }
  const out = { ...res, json };
  assert.ok(res.status < 500, `${where}: a registry must never answer 5xx here: ${res.body.toString('utf8', 0, 300)}`);
  if (res.status >= 400 && method !== 'HEAD') assertEnvelope(where, out);
  return out;
}

/** Compares bytes by length and digest (a readable failure for large bodies). */
export function assertBytes(actual: Buffer, expected: Buffer, message?: string): void {
  assert.equal(`${actual.length} bytes ${sha256(actual)}`, `${expected.length} bytes ${sha256(expected)}`, message);
}

/** Asserts an error answer: one of the statuses and, when the method has a body, one of the codes. */
export function assertError(res: OciResponse, status: number | number[], code?: string | string[]): void {
  const statuses = [status].flat();
  assert.ok(statuses.includes(res.status), `expected ${statuses.join(' or ')}, got ${res.status}: ${res.body.toString('utf8', 0, 300)}`);
  if (code === undefined || res.body.length === 0) return;
  const codes = [code].flat();
  const got = (res.json?.errors ?? []).map((e: { code: string }) => e.code);
  assert.ok(got.some((c: string) => codes.includes(c)), `expected code ${codes.join(' or ')}, got ${got.join(', ')}`);
}

/** Runs `fn` once, on first call; every later call shares its promise (a fixture that fails per test, not per suite). */
export function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= fn());
}

/** A fresh repository name under `spec/`, unique per call. */
export const repoName = (label: string) => `spec/${label}-${randomBytes(3).toString('hex')}`;

/** The path and query of a response's Location, resolved against the registry (what reggie and oras follow). */
export function location(reg: Registry, res: OciResponse): string {
  const value = res.headers.get('location');
  assert.ok(value, `a Location header is required (status ${res.status})`);
  const u = new URL(value, `${reg.url}/`);
  return u.pathname + u.search;
}

/** Appends query parameters to a path that may already carry a query (an upload Location does). */
export const withQuery = (path: string, params: Record<string, string>) => `${path}${path.includes('?') ? '&' : '?'}${new URLSearchParams(params)}`;

/** The target of a `Link: <...>; rel="next"` header as path and query, or undefined without one. */
export function nextLink(reg: Registry, res: OciResponse): string | undefined {
  const header = res.headers.get('link');
  if (!header) return undefined;
  const m = header.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  assert.ok(m, `Link header must be <url>; rel="next", got ${header}`);
  const u = new URL(m[1]!, `${reg.url}/`);
  return u.pathname + u.search;
}

/** Parses `WWW-Authenticate: Scheme k="v",k="v"`. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } {
  assert.ok(header, 'a WWW-Authenticate challenge is required');
  const [, scheme, rest] = header.match(/^(\w+)\s*(.*)$/) ?? [];
  assert.ok(scheme, `malformed challenge ${header}`);
  const params: Record<string, string> = {};
  for (const m of rest!.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!] = m[2]!;
  return { scheme, params };
}

// ---------------------------------------------------------------------------------------------
// Content: blobs, image manifests and indexes built at random, serialised with an unusual layout
// (3-space indent, trailing newline) so that a registry re-encoding the JSON changes the digest.

export interface Content {
  bytes: Buffer;
  digest: string;
  size: number;
  mediaType: string;
}

export const content = (bytes: Buffer | string, mediaType = 'application/octet-stream'): Content => {
  const b = Buffer.from(bytes);
  return { bytes: b, digest: sha256(b), size: b.length, mediaType };
};

export const serialise = (doc: unknown): Buffer => Buffer.from(`${JSON.stringify(doc, null, 3)}\n`);

export const descriptor = (c: Content, extra: Record<string, unknown> = {}) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, ...extra });

/** The 2-byte `{}` blob of the OCI empty descriptor. */
export const EMPTY_JSON = content('{}', MT.ociEmpty);

export interface ImageOptions {
  /** A number of random layers (default 1) or the layers themselves. */
  layers?: number | Content[];
  config?: Content;
  docker?: boolean;
  artifactType?: string;
  subject?: Content;
  annotations?: Record<string, string>;
  /** Extra top-level fields, e.g. unknown ones that must survive byte-exact. */
  extra?: Record<string, unknown>;
}

export interface Image {
  manifest: Content;
  config: Content;
  layers: Content[];
}

export function randomConfig(mediaType: string = MT.ociConfig): Content {
  const doc = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, 'spec-test': randomBytes(8).toString('hex') };
  return content(JSON.stringify(doc), mediaType);
}

export function image(opts: ImageOptions = {}): Image {
  const docker = opts.docker ?? false;
  const config = opts.config ?? randomConfig(docker ? MT.dockerConfig : MT.ociConfig);
  const layerType = docker ? MT.dockerLayer : MT.ociLayer;
  const layers = typeof opts.layers === 'object' ? opts.layers : Array.from({ length: opts.layers ?? 1 }, () => content(randomBytes(64 + Math.floor(Math.random() * 64)), layerType));
  const mediaType = docker ? MT.dockerManifest : MT.ociManifest;
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType };
  if (opts.artifactType) doc.artifactType = opts.artifactType;
  doc.config = descriptor(config);
  doc.layers = layers.map((l) => descriptor(l));
  if (opts.subject) doc.subject = descriptor(opts.subject);
  if (opts.annotations) doc.annotations = opts.annotations;
  Object.assign(doc, opts.extra);
  return { manifest: content(serialise(doc), mediaType), config, layers };
}

export interface IndexOptions {
  manifests: Content[];
  docker?: boolean;
  artifactType?: string;
  subject?: Content;
  annotations?: Record<string, string>;
}

export function index(opts: IndexOptions): Content {
  const mediaType = opts.docker ? MT.dockerList : MT.ociIndex;
  const doc: Record<string, unknown> = { schemaVersion: 2, mediaType };
  if (opts.artifactType) doc.artifactType = opts.artifactType;
  doc.manifests = opts.manifests.map((m, i) => descriptor(m, { platform: { architecture: i % 2 ? 'arm64' : 'amd64', os: 'linux' } }));
  if (opts.subject) doc.subject = descriptor(opts.subject);
  if (opts.annotations) doc.annotations = opts.annotations;
  return content(serialise(doc), mediaType);
}

// ---------------------------------------------------------------------------------------------
// Pushes, each asserting the status the spec requires.

/** POST, then PUT `?digest=` with the bytes: the sequence every client supports (202, then 201). */
export async function pushBlob(reg: Registry, repo: string, blob: Content | Buffer, opts: { auth?: Auth } = {}): Promise<Content> {
  const c = Buffer.isBuffer(blob) ? content(blob) : blob;
  const started = await reg.request('POST', `/v2/${repo}/blobs/uploads/`, { auth: opts.auth });
  assert.equal(started.status, 202, `POST uploads in ${repo}: ${started.body.toString('utf8', 0, 300)}`);
  const put = await reg.request('PUT', withQuery(location(reg, started), { digest: c.digest }), { auth: opts.auth, body: c.bytes, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201, `PUT blob ${c.digest}: ${put.body.toString('utf8', 0, 300)}`);
  return c;
}

/** PUT a manifest or index at a tag or digest with its media type as Content-Type; asserts 201. */
export async function pushManifest(reg: Registry, repo: string, ref: string, m: Content, opts: { contentType?: string; auth?: Auth } = {}): Promise<OciResponse> {
  const res = await reg.request('PUT', `/v2/${repo}/manifests/${ref}`, { auth: opts.auth, body: m.bytes, headers: { 'content-type': opts.contentType ?? m.mediaType } });
  assert.equal(res.status, 201, `PUT manifest ${repo}:${ref}: ${res.body.toString('utf8', 0, 300)}`);
  return res;
}

/** Pushes an image's config and layers, then its manifest at `ref` (default: by digest). */
export async function pushImage(reg: Registry, repo: string, img: Image, ref = img.manifest.digest, opts: { auth?: Auth } = {}): Promise<OciResponse> {
  for (const blob of [img.config, ...img.layers]) await pushBlob(reg, repo, blob, opts);
  return pushManifest(reg, repo, ref, img.manifest, opts);
}

/** POST a new upload session; asserts 202 and returns its Location (path and query). */
export async function startUpload(reg: Registry, repo: string): Promise<string> {
  const res = await reg.request('POST', `/v2/${repo}/blobs/uploads/`, { headers: { 'content-length': '0' } });
  assert.equal(res.status, 202);
  return location(reg, res);
}

/** PATCH one chunk, with `Content-Range: start-end` unless `start` is omitted (a streamed upload). */
export function patchChunk(reg: Registry, at: string, bytes: Buffer, start?: number): Promise<OciResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (start !== undefined) headers['content-range'] = `${start}-${start + bytes.length - 1}`;
  return reg.request('PATCH', at, { body: bytes, headers });
}

/** Follows `Link: rel="next"` from `first`, returning every page's list under `key`. */
export async function walkPages(reg: Registry, first: string, key: 'tags' | 'repositories', auth?: Auth): Promise<string[][]> {
  const pages: string[][] = [];
  for (let next: string | undefined = first; next !== undefined && pages.length < 1000; ) {
    const res = await reg.request('GET', next, { auth });
    assert.equal(res.status, 200, next);
    pages.push(res.json[key] ?? []);
    next = nextLink(reg, res);
  }
  return pages;
}

/** The /v1 client of imgsrv; distribution has no such API. */
export function v1(reg: Registry): ApiClient {
  if (!reg.api) throw new Error('distribution has no imgsrv /v1 API');
  return reg.api;
}

/** Creates a principal with the given roles and an API token for it (imgsrv /v1 auth API). */
export const principalToken = (reg: Registry, roles: string[]): Promise<string> => createPrincipalToken(v1(reg), roles, `oci spec ${roles.join('+') || 'no roles'}`);

// ---------------------------------------------------------------------------------------------
// The registry of a suite.

/**
 * One registry for the enclosing suite. imgsrv: `useServer` (its teardown asserts nothing was
 * logged at error level); distribution: docker-registry with htpasswd auth (user ci) and storage
 * in a temp dir on a free port. `env` applies to imgsrv only.
 */
export function useRegistry(opts: { env?: Record<string, string> } = {}): Registry {
  const reg = registryAt('', '');
  const imgsrv = PEER === 'imgsrv' ? useServer({ env: opts.env }) : undefined;
  let stop: (() => Promise<void>) | undefined;
  before(async () => {
    if (imgsrv) {
      Object.assign(reg, { url: imgsrv.server.url, password: imgsrv.server.token, server: imgsrv.server, api: imgsrv.api });
      return;
    }
    const peer = await startDistribution();
    Object.assign(reg, { url: peer.url, password: peer.password });
    stop = peer.stop;
  });
  after(async () => stop?.());
  return reg;
}

/** A Registry handle for a registry already running at `url` (user ci). */
export function registryAt(url: string, password: string): Registry {
  const reg: Registry = { peer: PEER, url, user: 'ci', password, request: (method, path, o) => ociRequest(reg, method, path, o) };
  return reg;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Debian's docker-registry (distribution 2.8) as REPORT section 2 configures it, with htpasswd auth. */
export async function startDistribution(): Promise<{ url: string; password: string; log: () => string; stop: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'oci-spec-distribution-'));
  const port = await freePort();
  const password = randomBytes(24).toString('base64url');
  const hashed = spawnSync('htpasswd', ['-Bbn', 'ci', password], { encoding: 'utf8' });
  assert.equal(hashed.status, 0, `htpasswd: ${hashed.stderr}`);
  await writeFile(join(dir, 'htpasswd'), hashed.stdout);
  const config = [
    'version: 0.1',
    'log: {level: warn, formatter: text, accesslog: {disabled: true}}',
    'storage:',
    `  filesystem: {rootdirectory: ${join(dir, 'data')}}`,
    '  delete: {enabled: true}',
    '  maintenance: {uploadpurging: {enabled: false}}',
    '  redirect: {disable: true}',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: not-a-secret-test-only',
    '  headers: {X-Content-Type-Options: [nosniff]}',
    `auth: {htpasswd: {realm: imgsrv-test, path: ${join(dir, 'htpasswd')}}}`,
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), `${config}\n`);
  const child = spawn('/usr/bin/docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  let log = '';
  const keep = (d: Buffer) => (log = (log + d.toString('utf8')).slice(-200_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}):\n${log}`);
    const up = await fetch(`${url}/v2/`).then((r) => r.arrayBuffer().then(() => true), () => false);
    if (up) break;
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer GET /v2/ within 20 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    password,
    log: () => log,
    async stop() {
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(force);
      process.off('exit', reap);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
