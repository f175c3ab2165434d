import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { apiClient } from '../helpers/client.ts';
import { useServer } from '../helpers/suite.ts';
import { makeDataDir, removeDir, startServer, TEST_STORE } from '../helpers/server.ts';
import { tokenParts } from '../../src/auth/tokens.ts';
import { dumpDatabase, seedPrincipal, withDatabase, withStore } from '../helpers/store.ts';

const begin = { expected_digest: `sha256:${'1'.repeat(64)}`, expected_size_bytes: 1 };

describe('bearer authentication and roles', () => {
  const ctx = useServer();

  it('requires a token on every bearerAuth operation (401 with WWW-Authenticate: Bearer)', async () => {
    const id = (await ctx.api.post('/v1/uploads', begin)).json.id;
    const calls: [string, string, object?][] = [
      ['POST', '/v1/uploads', { json: begin }],
      ['PUT', `/v1/uploads/${id}/parts/1`, { body: 'x', headers: { 'content-type': 'application/octet-stream' } }],
      ['POST', `/v1/uploads/${id}/complete`, { json: { parts: [{ number: 1, etag: 'x', size_bytes: 1 }] } }],
      ['POST', `/v1/uploads/${id}/abort`],
    ];
    for (const [method, path, opts] of calls) {
      const res = await ctx.api.request(method, path, { ...opts, token: null });
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="imgsrv"');
      assert.match(res.json.detail, /Authorization: Bearer/);
    }
    assert.equal((await ctx.api.get(`/v1/uploads/${id}`, { token: null })).status, 200, 'the contract leaves GET of a session public');
  });

  it('rejects malformed, unknown, expired and revoked tokens', async () => {
    const expired = await seedPrincipal(ctx.server.dataDir, { roles: ['content-writer'], expiresInMs: -1000 });
    const revoked = await seedPrincipal(ctx.server.dataDir, { roles: ['content-writer'], revoked: true });
    const { id } = tokenParts(ctx.server.token);
    const cases: [Record<string, string>, RegExp][] = [
      [{ authorization: 'Basic YWRtaW46YWRtaW4=' }, /must be "Bearer <token>"/],
      [{ authorization: 'Bearer' }, /must be "Bearer <token>"/],
      [{ authorization: `Bearer ${'x'.repeat(9000)}` }, /must be "Bearer <token>"/],
      [{ authorization: 'Bearer imgsrv_00000000000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }, /not valid/],
      [{ authorization: `Bearer imgsrv_${id}_${'A'.repeat(43)}` }, /not valid/],
      [{ authorization: `Bearer ${expired}` }, /expired/],
      [{ authorization: `Bearer ${revoked}` }, /revoked/],
    ];
    for (const [headers, detail] of cases) {
      const res = await ctx.api.request('POST', '/v1/uploads', { json: begin, headers, token: null });
      assert.equal(res.status, 401, headers.authorization!.slice(0, 40));
      assert.match(res.json.detail, detail);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="imgsrv", error="invalid_token"');
    }
    assert.equal((await ctx.api.request('POST', '/v1/uploads', { json: begin, headers: { authorization: `bearer ${ctx.server.token}` }, token: null })).status, 201, 'the scheme is case-insensitive');
  });

  it('answers 403 when the token is valid but no role grants the action', async () => {
    const authOnly = await seedPrincipal(ctx.server.dataDir, { roles: ['auth-manager'] });
    const none = await seedPrincipal(ctx.server.dataDir, { roles: [] });
    for (const token of [authOnly, none]) {
      const res = await ctx.api.post('/v1/uploads', begin, { token });
      assert.equal(res.status, 403);
      assert.match(res.json.detail, /holds no role that allows uploads\.write/);
    }
    const writer = await seedPrincipal(ctx.server.dataDir, { roles: ['content-writer'] });
    assert.equal((await ctx.api.post('/v1/uploads', begin, { token: writer })).status, 201);
  });

  it('never logs the token', () => {
    assert.ok(!ctx.server.output().includes(tokenParts(ctx.server.token).secret));
  });
});

describe('bootstrap', () => {
  it('prints a random admin token once, stores only its hash, and keeps working after restart', async () => {
    const dataDir = await makeDataDir();
    try {
      const first = await startServer({ dataDir, env: { IMGSRV_BOOTSTRAP_TOKEN: '' } });
      const [, token] = first.output().match(/export TOKEN=(imgsrv_\S+)/) ?? [];
      assert.ok(token, first.output());
      const api = apiClient({ url: first.url, token });
      assert.equal((await api.post('/v1/uploads', begin)).status, 201);
      await first.stop();

      const { secret } = tokenParts(token);
      if (TEST_STORE === 'sqlite') {
        // Before anything opens the database again and checkpoints the WAL away.
        const files = ['metadata.sqlite', 'metadata.sqlite-wal'].map((f) => join(dataDir, f)).filter((f) => existsSync(f));
        const file = files.map((f) => readFileSync(f).toString('latin1')).join('');
        assert.ok(!file.includes(secret), 'no plaintext secret in the database files, free pages and WAL included');
      }
      const rows = await withDatabase(dataDir, (db) => db.selectFrom('api_tokens').selectAll().execute());
      assert.equal(rows.length, 1);
      assert.ok(!(await dumpDatabase(dataDir)).includes(secret), 'no plaintext secret in the database');

      const second = await startServer({ dataDir, env: { IMGSRV_BOOTSTRAP_TOKEN: '' } });
      assert.doesNotMatch(second.output(), /TOKEN=/, 'the token is printed only when created');
      assert.equal((await apiClient({ url: second.url, token }).post('/v1/uploads', begin)).status, 201);
      await second.stop();
    } finally {
      await removeDir(dataDir);
    }
  });

  it('renews an expired bootstrap token when started again with it, but not a revoked one', async () => {
    const server = await startServer({ token: 'operator-chosen-bootstrap-secret-1234' });
    const { dataDir, token } = server;
    try {
      await server.stop();
      await withStore(dataDir, async (store) => {
        const row = (await store.getApiToken('bootstrap'))!;
        await store.insertApiToken({ ...row, id: 'spare', expiresAt: new Date(Date.now() + 3600_000) });
      });
      await withDatabase(dataDir, (db) => db.updateTable('api_tokens').set({ expires_at: Date.now() - 1000 }).where('id', '=', 'bootstrap').execute());
      const again = await startServer({ dataDir, token });
      assert.match(again.output(), /renewed the expired bootstrap token/);
      assert.equal((await apiClient(again).post('/v1/uploads', begin)).status, 201);
      await again.stop();
      await withDatabase(dataDir, (db) => db.updateTable('api_tokens').set({ expires_at: Date.now() - 1000, revoked_at: Date.now() }).where('id', '=', 'bootstrap').execute());
      const third = await startServer({ dataDir, token });
      assert.doesNotMatch(third.output(), /renewed/);
      assert.equal((await apiClient(third).post('/v1/uploads', begin)).status, 401);
      await third.stop();
    } finally {
      await removeDir(dataDir);
    }
  });

  it('uses IMGSRV_BOOTSTRAP_TOKEN verbatim, in any shape', async () => {
    const server = await startServer({ token: 'my-operator-chosen-bootstrap-secret' });
    try {
      assert.match(server.output(), /with the token from IMGSRV_BOOTSTRAP_TOKEN/);
      assert.doesNotMatch(server.output(), /my-operator-chosen/);
      assert.equal((await apiClient(server).post('/v1/uploads', begin)).status, 201);
    } finally {
      await server.stop();
      await removeDir(server.dataDir);
    }
  });
});
