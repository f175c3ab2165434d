import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { ROLES } from '../../src/domain/roles.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { dumpDatabase, withDatabase } from '../helpers/store.ts';
import { useServer } from '../helpers/suite.ts';

const begin = { expected_digest: `sha256:${'1'.repeat(64)}`, expected_size_bytes: 1 };
const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

describe('auth management: roles, principals, role assignments, API tokens', () => {
  const ctx = useServer({ env: { IMGSRV_MAX_TOKEN_LIFETIME: '3600' } });
  const plaintexts: string[] = [];

  /** Creates a principal with roles and an API token for it; returns its id and a client. */
  async function principalWith(roles: string[], kind = 'service'): Promise<{ id: string; api: ApiClient; tokenId: string }> {
    const created = await ctx.api.post('/v1/auth/principals', { kind, display_name: `${roles.join('+') || 'no roles'} ${kind}` });
    assert.equal(created.status, 201);
    for (const role of roles) assert.equal((await ctx.api.put(`/v1/auth/principals/${created.json.id}/roles/${role}`)).status, 204);
    const issued = await ctx.api.post(`/v1/auth/principals/${created.json.id}/api-tokens`, { name: 'test', expires_at: inSeconds(600) });
    assert.equal(issued.status, 201);
    plaintexts.push(issued.json.plaintext);
    return { id: created.json.id, api: apiClient({ url: ctx.server.url, token: issued.json.plaintext }), tokenId: issued.json.id };
  }

  it('lists the built-in roles with the actions the route checks use', async () => {
    const res = await ctx.api.get('/v1/auth/roles');
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.json.roles,
      ROLES.map((r) => ({ id: r.id, display_name: r.displayName, description: r.description, actions: [...r.actions] })),
    );
    assert.deepEqual(
      res.json.roles.map((r: { id: string }) => r.id),
      ['auth-manager', 'content-writer'],
    );
  });

  it('creates, gets and lists principals; rejects bad input', async () => {
    const created = await ctx.api.post('/v1/auth/principals', { kind: 'user', display_name: 'Alice', attributes: { email: 'alice@example.com', team: ['images'] } });
    assert.equal(created.status, 201);
    assert.deepEqual({ ...created.json, id: 'x' }, { id: 'x', kind: 'user', display_name: 'Alice', attributes: { email: 'alice@example.com', team: ['images'] }, role_ids: [] });
    assert.deepEqual((await ctx.api.get(`/v1/auth/principals/${created.json.id}`)).json, created.json);
    const listed = (await ctx.api.get('/v1/auth/principals')).json.principals;
    assert.deepEqual(listed[0], { id: 'admin', kind: 'user', display_name: 'admin', attributes: { bootstrap: true }, role_ids: ['auth-manager', 'content-writer'] });
    assert.ok(listed.some((p: { id: string }) => p.id === created.json.id));
    assert.deepEqual((await ctx.api.post('/v1/auth/principals', { kind: 'service', display_name: 'svc' })).json.attributes, {});

    assert.equal((await ctx.api.get('/v1/auth/principals/nobody')).status, 404);
    const bad: [unknown, RegExp][] = [
      [{ kind: 'robot', display_name: 'x' }, /kind/],
      [{ kind: 'user' }, /display_name/],
      [{ kind: 'user', display_name: '' }, /display_name/],
      [{ kind: 'user', display_name: 'x'.repeat(201) }, /at most 200/],
      [{ kind: 'user', display_name: 'x', roles: ['auth-manager'] }, /unknown field "roles"/],
      [{ kind: 'user', display_name: 'x', attributes: 'a' }, /attributes/],
    ];
    for (const [body, detail] of bad) {
      const res = await ctx.api.post('/v1/auth/principals', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.json.detail, detail);
    }
  });

  it('assigns and removes roles idempotently; the last auth-manager cannot lose the role', async () => {
    const { id } = await principalWith([]);
    for (let i = 0; i < 2; i++) assert.equal((await ctx.api.put(`/v1/auth/principals/${id}/roles/content-writer`)).status, 204);
    assert.deepEqual((await ctx.api.get(`/v1/auth/principals/${id}`)).json.role_ids, ['content-writer']);
    for (let i = 0; i < 2; i++) assert.equal((await ctx.api.delete(`/v1/auth/principals/${id}/roles/content-writer`)).status, 204);
    assert.deepEqual((await ctx.api.get(`/v1/auth/principals/${id}`)).json.role_ids, []);

    assert.equal((await ctx.api.put(`/v1/auth/principals/${id}/roles/superuser`)).status, 400);
    assert.equal((await ctx.api.put('/v1/auth/principals/nobody/roles/content-writer')).status, 404);
    assert.equal((await ctx.api.delete('/v1/auth/principals/nobody/roles/content-writer')).status, 404);

    const lockout = await ctx.api.delete('/v1/auth/principals/admin/roles/auth-manager');
    assert.equal(lockout.status, 400);
    assert.equal(lockout.json.code, 'last_auth_manager');
    assert.ok((await ctx.api.get('/v1/auth/principals/admin')).json.role_ids.includes('auth-manager'));

    // With a second auth-manager, the first may step down; then the second is the last.
    const second = await principalWith(['auth-manager']);
    assert.equal((await ctx.api.delete('/v1/auth/principals/admin/roles/auth-manager')).status, 204);
    assert.equal((await second.api.delete(`/v1/auth/principals/${second.id}/roles/auth-manager`)).status, 400);
    assert.equal((await second.api.put('/v1/auth/principals/admin/roles/auth-manager')).status, 204);
  });

  it('issues tokens whose plaintext is shown once, lists them without it, and revokes them at once', async () => {
    const { id } = await principalWith(['content-writer']);
    const issued = await ctx.api.post(`/v1/auth/principals/${id}/api-tokens`, { name: 'ci', expires_at: inSeconds(1800) });
    assert.equal(issued.status, 201);
    assert.equal(issued.headers.get('cache-control'), 'no-store');
    assert.match(issued.json.plaintext, /^imgsrv_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    assert.equal(issued.json.principal_id, id);
    assert.equal(issued.json.name, 'ci');
    plaintexts.push(issued.json.plaintext);
    const writer = apiClient({ url: ctx.server.url, token: issued.json.plaintext });
    assert.equal((await writer.post('/v1/uploads', begin)).status, 201);

    const listed = (await ctx.api.get(`/v1/auth/principals/${id}/api-tokens`)).json.api_tokens;
    assert.equal(listed.length, 2);
    for (const t of listed) assert.equal(t.plaintext, undefined);
    const mine = listed.find((t: { id: string }) => t.id === issued.json.id);
    assert.ok(mine.last_used_at, 'last_used_at is recorded');
    const firstUse = mine.last_used_at;
    await writer.get('/v1/images');
    const again = (await ctx.api.get(`/v1/auth/principals/${id}/api-tokens`)).json.api_tokens.find((t: { id: string }) => t.id === issued.json.id);
    assert.equal(again.last_used_at, firstUse, 'uses within a minute are not written again');

    assert.equal((await ctx.api.delete(`/v1/auth/api-tokens/${issued.json.id}`)).status, 204);
    const revoked = await writer.post('/v1/uploads', begin);
    assert.equal(revoked.status, 401);
    assert.match(revoked.json.detail, /revoked/);
    assert.equal((await ctx.api.delete(`/v1/auth/api-tokens/${issued.json.id}`)).status, 204, 'revoking again is harmless');
    const after = (await ctx.api.get(`/v1/auth/principals/${id}/api-tokens`)).json.api_tokens.find((t: { id: string }) => t.id === issued.json.id);
    assert.ok(after.revoked_at);
    assert.equal((await ctx.api.delete('/v1/auth/api-tokens/0123456789abcdef0123456789abcdef')).status, 404);
    assert.equal((await ctx.api.get('/v1/auth/principals/nobody/api-tokens')).status, 404);
  });

  it('bounds expires_at: in the future, within the maximum lifetime', async () => {
    const { id } = await principalWith([]);
    const cases: [unknown, number, RegExp][] = [
      [{ expires_at: inSeconds(-60) }, 400, /in the future/],
      [{ expires_at: inSeconds(7200) }, 400, /at most 3600 seconds/],
      [{ expires_at: 'tomorrow' }, 400, /expires_at/],
      [{ name: 'no expiry' }, 400, /expires_at/],
      [{ expires_at: inSeconds(60), scope: 'all' }, 400, /unknown field "scope"/],
    ];
    for (const [body, status, detail] of cases) {
      const res = await ctx.api.post(`/v1/auth/principals/${id}/api-tokens`, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(res.json.detail, detail);
    }
    assert.equal((await ctx.api.post('/v1/auth/principals/nobody/api-tokens', { expires_at: inSeconds(60) })).status, 404);
    const unnamed = await ctx.api.post(`/v1/auth/principals/${id}/api-tokens`, { expires_at: inSeconds(3500) });
    assert.equal(unnamed.status, 201);
    assert.equal(unnamed.json.name, '');
    plaintexts.push(unnamed.json.plaintext);
  });

  // Expiry of issued tokens is tested with a moved clock, in time.test.ts.

  it('lets only auth-managers manage auth, and auth-managers without content-writer not upload', async () => {
    const writer = await principalWith(['content-writer']);
    const manager = await principalWith(['auth-manager']);
    const calls: [string, string, object?][] = [
      ['GET', '/v1/auth/roles'],
      ['GET', '/v1/auth/principals'],
      ['POST', '/v1/auth/principals', { json: { kind: 'user', display_name: 'x' } }],
      ['GET', `/v1/auth/principals/${writer.id}`],
      ['PUT', `/v1/auth/principals/${writer.id}/roles/auth-manager`],
      ['DELETE', `/v1/auth/principals/${writer.id}/roles/content-writer`],
      ['GET', `/v1/auth/principals/${writer.id}/api-tokens`],
      ['POST', `/v1/auth/principals/${writer.id}/api-tokens`, { json: { expires_at: inSeconds(60) } }],
      ['DELETE', `/v1/auth/api-tokens/${manager.tokenId}`],
      ['GET', '/v1/auth/oidc-provisioning-rules'],
      ['POST', '/v1/auth/oidc-provisioning-rules', { json: { display_name: 'x', issuer_url: 'https://ci.example', audience: 'a', condition: 'true' } }],
      ['GET', '/v1/auth/oidc-provisioning-rules/r'],
      ['PUT', '/v1/auth/oidc-provisioning-rules/r', { json: { display_name: 'x', issuer_url: 'https://ci.example', audience: 'a', condition: 'true' } }],
      ['DELETE', '/v1/auth/oidc-provisioning-rules/r'],
      ['GET', '/v1/auth/oidc-provisioning-rules/r/reconciliation'],
      ['POST', '/v1/auth/oidc-provisioning-rules/r/reconciliation'],
    ];
    for (const [method, path, opts] of calls) {
      const forbidden = await writer.api.request(method, path, opts);
      assert.equal(forbidden.status, 403, `${method} ${path} as content-writer`);
      assert.match(forbidden.json.detail, /holds no role that allows auth\.(read|write)/);
      assert.equal((await writer.api.request(method, path, { ...opts, token: null })).status, 401, `${method} ${path} without a token`);
    }
    assert.deepEqual((await writer.api.get(`/v1/auth/principals/${writer.id}`)).status, 403, 'not even about itself');
    assert.equal((await manager.api.get('/v1/auth/principals')).status, 200);
    const upload = await manager.api.post('/v1/uploads', begin);
    assert.equal(upload.status, 403);
    assert.match(upload.json.detail, /uploads\.write/);
  });

  it('stores only hashes of token secrets', async () => {
    const rows = await withDatabase(ctx.server.dataDir, (db) => db.selectFrom('api_tokens').selectAll().execute());
    const dump = await dumpDatabase(ctx.server.dataDir);
    assert.ok(plaintexts.length >= 5);
    for (const plaintext of plaintexts) {
      const [, id, secret] = /^imgsrv_([0-9a-f]{32})_(.+)$/.exec(plaintext)!;
      assert.ok(!dump.includes(secret!), 'no secret anywhere in the database');
      const row = rows.find((r) => r.id === id)!;
      assert.equal(row.secret_hash, createHash('sha256').update(secret!).digest('hex'));
    }
  });

  it('audits every change with actor, target and time, and never logs a token', () => {
    const events = ctx.server
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"audit"'))
      .map((l) => JSON.parse(l).audit as { action: string; actor: string; target: string; at: string });
    for (const action of ['principal.create', 'principal.role.assign', 'principal.role.unassign', 'api_token.issue', 'api_token.revoke']) {
      assert.ok(
        events.some((e) => e.action === action),
        `${action} is audited`,
      );
    }
    for (const e of events) {
      assert.ok(e.actor && e.target && !Number.isNaN(Date.parse(e.at)), JSON.stringify(e));
    }
    const out = ctx.server.output();
    for (const plaintext of plaintexts) assert.ok(!out.includes(plaintext.slice(40)), 'no token secret in the logs');
  });
});
