import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig, mirrorOfAptSources, unknownSettings } from '../../src/config.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'imgsrv-config-'));
  dirs.push(dir);
  return dir;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('configuration', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.port, 8080);
    assert.equal(c.dataDir, resolve('./data'));
    assert.deepEqual(c.database, { kind: 'sqlite', file: resolve('./data/metadata.sqlite') });
    assert.equal(c.uploadTtlSeconds, 86400);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.tls, undefined);
    assert.ok(Object.isFrozen(c));
  });

  it('reads every setting', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'cert.pem'), '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
    writeFileSync(join(dir, 'key.pem'), '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n');
    const c = loadConfig({
      IMGSRV_HOST: '0.0.0.0',
      IMGSRV_PORT: '0',
      IMGSRV_DATA_DIR: dir,
      IMGSRV_BOOTSTRAP_TOKEN: 'operator-token',
      IMGSRV_TLS_CERT: join(dir, 'cert.pem'),
      IMGSRV_TLS_KEY: join(dir, 'key.pem'),
      IMGSRV_PUBLIC_URL: 'https://images.example.com/',
      IMGSRV_UPLOAD_TTL: '60',
      IMGSRV_LOG_LEVEL: 'debug',
      IMGSRV_FAILPOINTS: 'a, b',
    });
    assert.equal(c.port, 0);
    assert.equal(c.bootstrapToken, 'operator-token');
    assert.match(c.tls!.cert, /BEGIN CERTIFICATE/);
    assert.equal(c.publicUrl, 'https://images.example.com');
    assert.equal(c.uploadTtlSeconds, 60);
    assert.deepEqual(c.failpoints, ['a', 'b']);
    assert.deepEqual(loadConfig({ IMGSRV_DATABASE_URL: `sqlite:${dir}/x.db` }).database, { kind: 'sqlite', file: `${dir}/x.db` });
    assert.deepEqual(loadConfig({ IMGSRV_DATABASE_URL: 'postgres://imgsrv:s3cret@db.internal:5432/images?sslmode=require' }).database, {
      kind: 'postgres',
      url: 'postgres://imgsrv:s3cret@db.internal:5432/images?sslmode=require',
      display: 'postgres://imgsrv:***@db.internal:5432/images?sslmode=require',
    });
    assert.equal(
      (loadConfig({ IMGSRV_DATABASE_URL: 'postgresql://db/images?user=imgsrv&password=s3cret' }).database as { display: string }).display,
      'postgresql://db/images?user=imgsrv&password=***',
    );
  });

  it('rejects bad values with one line naming the variable', () => {
    const bad: Record<string, string>[] = [
      { IMGSRV_PORT: '70000' },
      { IMGSRV_PORT: 'eighty' },
      { IMGSRV_UPLOAD_TTL: '0' },
      { IMGSRV_UPLOAD_TTL: '-5' },
      { IMGSRV_LOG_LEVEL: 'loud' },
      { IMGSRV_DATABASE_URL: 'mysql://x' },
      { IMGSRV_DATABASE_URL: 'postgres://' },
      { IMGSRV_DATABASE_URL: 'postgres://u:p@[db/x' },
      { IMGSRV_PUBLIC_URL: 'images.example.com' },
      { IMGSRV_PUBLIC_URL: 'https://x/?q=1' },
      { IMGSRV_TLS_CERT: '/nonexistent.pem' },
      { IMGSRV_TLS_CERT: '/nonexistent.pem', IMGSRV_TLS_KEY: '/nonexistent.key' },
      { IMGSRV_BOOTSTRAP_TOKEN: 'has space' },
      { IMGSRV_COMPOSE_MIRROR: 'debian/mirror' },
      { IMGSRV_COMPOSE_MIRROR: 'ftp://mirror.example/debian' },
      { IMGSRV_COMPOSE_MIRROR: 'http://mirror.example/debian?x=1' },
      { IMGSRV_JOBS: 'ingest,bake' },
      { IMGSRV_BLOB_STORE: 'gcs' },
      { IMGSRV_BLOB_STORE: 's3' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'Not_A_Bucket' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_ENDPOINT: 'http://rgw:7480/images' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_ACCESS_KEY_ID: 'AKIA0000' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_PREFIX: '/abs' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_FORCE_PATH_STYLE: 'maybe' },
      { IMGSRV_S3_REDIRECT: 'presigned' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_ENDPOINT: 'http://user:pw@rgw:7480' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_REGION: 'Mars Base' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_REDIRECT: 'yes' },
      { IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_REDIRECT: 'presigned', IMGSRV_S3_REDIRECT_TTL: '5' },
    ];
    for (const env of bad) {
      assert.throws(
        () => loadConfig(env),
        (e: unknown) => e instanceof ConfigError && !e.message.includes('\n') && Object.keys(env).some((k) => e.message.includes(k)),
        JSON.stringify(env),
      );
    }
  });

  it('takes the compose mirror from IMGSRV_COMPOSE_MIRROR, else from the host apt sources', () => {
    const dir = tempDir();
    const deb822 = join(dir, 'debian.sources');
    writeFileSync(deb822, [
      'Types: deb', 'URIs: http://security.example/debian-security', 'Suites: bookworm-security', 'Components: main', '',
      'Types: deb', 'URIs: http://mirror.example/debian/', 'Suites: bookworm bookworm-updates', 'Components: main', '',
    ].join('\n'));
    const oneLine = join(dir, 'sources.list');
    writeFileSync(oneLine, '# comment\ndeb [arch=amd64] https://other.example/debian bookworm main\n');
    const securityOnly = join(dir, 'security.list');
    writeFileSync(securityOnly, 'deb http://security.example/debian-security bookworm-security main\n');

    assert.equal(mirrorOfAptSources([join(dir, 'missing'), deb822, oneLine]), 'http://mirror.example/debian');
    assert.equal(mirrorOfAptSources([securityOnly, oneLine]), 'https://other.example/debian');
    assert.equal(mirrorOfAptSources([securityOnly]), undefined);

    const fromHost = loadConfig({ IMGSRV_DATA_DIR: dir }, [oneLine]);
    assert.equal(fromHost.compose.mirror, 'https://other.example/debian');
    assert.equal(fromHost.compose.workDir, join(dir, 'compose', 'work'));
    assert.equal(fromHost.compose.cacheDir, join(dir, 'compose', 'cache'));
    assert.equal(loadConfig({ IMGSRV_COMPOSE_MIRROR: 'http://m.example/debian/' }, [oneLine]).compose.mirror, 'http://m.example/debian');
    assert.equal(loadConfig({}, [securityOnly]).compose.mirror, undefined);
  });

  it('keeps blobs in the data dir by default, or in an S3 bucket', () => {
    assert.deepEqual(loadConfig({}).blobStore, { kind: 'fs' });
    assert.deepEqual(loadConfig({ IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images' }).blobStore, { kind: 's3', bucket: 'images', region: 'us-east-1', forcePathStyle: false, prefix: '' });
    const s3 = loadConfig({
      IMGSRV_BLOB_STORE: 's3',
      IMGSRV_S3_BUCKET: 'images',
      IMGSRV_S3_ENDPOINT: 'http://rgw.internal:7480/',
      IMGSRV_S3_REGION: 'eu-west-1',
      IMGSRV_S3_ACCESS_KEY_ID: 'AKIA0000',
      IMGSRV_S3_SECRET_ACCESS_KEY: 'secret',
      IMGSRV_S3_PREFIX: 'imgsrv/prod',
    }).blobStore;
    assert.deepEqual(s3, { kind: 's3', bucket: 'images', region: 'eu-west-1', endpoint: 'http://rgw.internal:7480', forcePathStyle: true, prefix: 'imgsrv/prod/', credentials: { accessKeyId: 'AKIA0000', secretAccessKey: 'secret' } });
    assert.equal((loadConfig({ IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_ENDPOINT: 'https://s3.example', IMGSRV_S3_FORCE_PATH_STYLE: 'false' }).blobStore as { forcePathStyle: boolean }).forcePathStyle, false);
    assert.equal((loadConfig({ IMGSRV_BLOB_STORE: 's3', IMGSRV_S3_BUCKET: 'images', IMGSRV_S3_REDIRECT: 'presigned' }).blobStore as { redirectTtlSeconds: number }).redirectTtlSeconds, 300);
  });

  it('runs every job kind by default, compose one at a time', () => {
    const c = loadConfig({});
    assert.ok(c.jobs.some((j) => j.kind === 'compose' && j.concurrency === 1));
    assert.deepEqual(loadConfig({ IMGSRV_JOBS: 'compose' }).jobs.map((j) => j.kind), ['compose']);
  });

  it('reports IMGSRV_ variables it does not know', () => {
    assert.deepEqual(unknownSettings({ IMGSRV_PROT: '1', IMGSRV_PORT: '1', PATH: '/bin' }), ['IMGSRV_PROT']);
  });
});
