import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { useServer } from '../helpers/suite.ts';
import { PG_URL, schemaUrl } from '../helpers/postgres.ts';
import { environmentWithoutSettings, makeDataDir, REPO_ROOT, removeDir, startServer } from '../helpers/server.ts';
import { testStorage } from '../helpers/storage.ts';

describe('health, readiness and the served contract', () => {
  const ctx = useServer();

  it('reports liveness and readiness', async () => {
    assert.deepEqual((await ctx.api.get('/healthz', { token: null })).json, { status: 'ok' });
    assert.deepEqual((await ctx.api.get('/readyz', { token: null })).json, { status: 'ready' });
  });

  it('is not ready while the blob storage cannot be written, and recovers', async () => {
    const repair = await (await testStorage(ctx.server.dataDir)).breakStorage();
    const res = await ctx.api.get('/readyz', { token: null });
    assert.equal(res.status, 503);
    assert.match(res.json.detail, /blobs unavailable/);
    assert.equal((await ctx.api.get('/healthz')).status, 200, 'the process is still alive');
    await repair();
    assert.equal((await ctx.api.get('/readyz')).status, 200);
  });

  it('serves the contract it validates against, as YAML and JSON', async () => {
    const yaml = await ctx.api.get('/openapi/v1.yaml', { token: null });
    assert.equal(yaml.status, 200);
    assert.match(yaml.headers.get('content-type')!, /^application\/yaml/);
    const text = yaml.bytes.toString('utf8');
    assert.equal(text, await readFile(join(REPO_ROOT, 'openapi/imgsrv-v1.yaml'), 'utf8'));
    const json = await ctx.api.get('/openapi.json', { token: null });
    assert.deepEqual(json.json, parse(text));
  });
});

describe('configuration errors', () => {
  const run = (env: Record<string, string>) => {
    return spawnSync(process.execPath, ['dist/main.mjs'], { cwd: REPO_ROOT, env: { ...environmentWithoutSettings(), ...env }, encoding: 'utf8', timeout: 20_000 });
  };
  it('exit with status 2 and one line naming the variable', async () => {
    await startServer().then((s) => s.stop().then(() => removeDir(s.dataDir))); // makes sure the bundle is built
    const bad: Record<string, string>[] = [{ IMGSRV_PORT: 'http' }, { IMGSRV_UPLOAD_TTL: '0' }, { IMGSRV_TLS_CERT: '/etc/hostname' }, { IMGSRV_LOG_LEVEL: 'chatty' }];
    for (const env of bad) {
      const r = run(env);
      assert.equal(r.status, 2, JSON.stringify(env));
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, new RegExp(`^imgsrv: configuration error: .*${Object.keys(env)[0]}`));
    }
  });
});

describe('start-up failures', () => {
  it('say in one line that the port is taken', async () => {
    const taken = await startServer();
    try {
      const clean = environmentWithoutSettings();
      const r = spawnSync(process.execPath, ['dist/main.mjs'], { cwd: REPO_ROOT, env: { ...clean, IMGSRV_PORT: new URL(taken.url).port, IMGSRV_DATA_DIR: join(taken.dataDir, 'second'), IMGSRV_LOG_LEVEL: 'warn' }, encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1);
      assert.match(r.stderr.trim(), /^imgsrv: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE$/);
    } finally {
      await taken.stop();
      await removeDir(taken.dataDir);
    }
  });

  it('say in one line, without the password, why the PostgreSQL database cannot be used', async () => {
    const dir = await makeDataDir();
    try {
      const clean = environmentWithoutSettings();
      for (const [url, why] of [
        ['postgres://imgsrv:s3cret@127.0.0.1:1/test', /connect ECONNREFUSED 127\.0\.0\.1:1$/],
        [`${PG_URL.replace(/\/test$/, '/no_such_database')}?password=s3cret`, /database "no_such_database" does not exist$/],
        [schemaUrl('no_such_schema'), /search_path names no existing schema/],
      ] as const) {
        const r = spawnSync(process.execPath, ['dist/main.mjs'], { cwd: REPO_ROOT, env: { ...clean, IMGSRV_DATABASE_URL: url, IMGSRV_DATA_DIR: dir, IMGSRV_PORT: '0' }, encoding: 'utf8', timeout: 30_000 });
        assert.equal(r.status, 1, r.stderr);
        const lines = r.stderr.trim().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^imgsrv: cannot open the metadata database postgres/);
        assert.match(lines[0]!, why);
        assert.doesNotMatch(lines[0]!, /s3cret/);
      }
    } finally {
      await removeDir(dir);
    }
  });
});

describe('HTTPS', () => {
  it('speaks TLS only when a certificate and key are configured', async () => {
    const dir = await makeDataDir();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
    const server = await startServer({ dataDir: join(dir, 'data'), env: { IMGSRV_TLS_CERT: cert, IMGSRV_TLS_KEY: key } });
    try {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const ca = await readFile(cert);
      const body = await new Promise<string>((resolve, reject) => {
        httpsGet(`${server.url}/healthz`, { ca }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve(text));
        }).on('error', reject);
      });
      assert.deepEqual(JSON.parse(body), { status: 'ok' });
      await assert.rejects(fetch(`${server.url.replace('https', 'http')}/healthz`), 'plain HTTP is not spoken');
      await assert.rejects(
        new Promise((resolve, reject) => httpsGet(`${server.url}/healthz`, { ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, resolve).on('error', reject)),
        'TLS below 1.2 is refused',
      );
    } finally {
      await server.stop();
      await removeDir(dir);
    }
  });
});
