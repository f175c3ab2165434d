import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { publishedVersion } from '../helpers/catalog.ts';
import { apiClient, type ApiClient } from '../helpers/client.ts';
import { signingKey, startIssuer, type TestIssuer } from '../helpers/oidc-issuer.ts';
import { loggedErrors, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';

const AUDIENCE = 'imgsrv.example';
const MAIN = { repository: 'acme/images', ref: 'refs/heads/main', sub: 'repo:acme/images:ref:refs/heads/main', aud: AUDIENCE };
const begin = { expected_digest: `sha256:${'1'.repeat(64)}`, expected_size_bytes: 1 };

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('OIDC workload identity against a real local issuer', () => {
  let issuer: TestIssuer;
  let server: ServerHandle;
  let admin: ApiClient;
  /** A client presenting the given bearer token. */
  let as: (token: string) => ApiClient;
  let ruleId: string;

  before(async () => {
    issuer = await startIssuer();
    server = await startServer({ env: { NODE_EXTRA_CA_CERTS: issuer.caFile } });
    admin = apiClient(server);
    as = (token) => apiClient({ url: server.url, token });
    const rule = await admin.post('/v1/auth/oidc-provisioning-rules', {
      display_name: 'acme/images main branch',
      issuer_url: issuer.url,
      audience: AUDIENCE,
      forwarded_claims: ['repository', 'ref'],
      condition: 'claims.repository == "acme/images" && claims.ref == "refs/heads/main"',
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.json));
    assert.deepEqual(rule.json.assign_role_ids, ['content-writer'], 'assign_role_ids defaults to content-writer');
    ruleId = rule.json.id;
  });
  after(async () => {
    await server?.stop();
    await issuer?.close();
    if (!server) return;
    await removeDir(server.dataDir);
    assert.deepEqual(loggedErrors(server), [], 'the server logged errors');
  });

  it('lets a token whose claims match a rule upload and publish, as a service principal provisioned once', async () => {
    const token = await issuer.sign({ ...MAIN, run_id: '42' });
    const ci = as(token);
    await publishedVersion(ci, 'ci-built', '1.0.0');
    const version = await ci.get('/v1/images/ci-built/versions');
    assert.equal(version.json.versions[0].state, 'published');

    const principals = (await admin.get('/v1/auth/principals')).json.principals.filter((p: { kind: string }) => p.kind === 'service');
    assert.equal(principals.length, 1);
    const [p] = principals;
    assert.deepEqual(p.attributes, { iss: issuer.url, sub: MAIN.sub, aud: AUDIENCE, repository: 'acme/images', ref: 'refs/heads/main' }, 'forwarded claims only');
    assert.deepEqual(p.role_ids, ['content-writer']);

    // Another token of the same subject (a later job) is the same principal.
    await ci.get('/v1/images');
    assert.equal((await as(await issuer.sign({ ...MAIN, run_id: '43' })).post('/v1/uploads', begin)).status, 201);
    assert.equal((await admin.get('/v1/auth/principals')).json.principals.filter((x: { kind: string }) => x.kind === 'service').length, 1);

    const audit = server.output().split('\n').filter((l) => l.includes('"oidc.provision"'));
    assert.ok(audit.length >= 1 && audit.every((l) => l.includes(`"target":"${p.id}"`)), 'every provisioning is audited');
    assert.ok(!server.output().includes(token), 'the token is never logged');
  });

  it('rejects tokens with the wrong audience, issuer, expiry, algorithm, key or signature (401)', async () => {
    const other = await signingKey('key-1'); // same kid as a published key, different key
    const unpublished = await signingKey('key-unknown');
    const [pub] = issuer.published;
    const hmacWithPublicKey = `${b64({ alg: 'HS256', typ: 'JWT', kid: pub!.kid })}.${b64({ ...MAIN, iss: issuer.url, iat: nowSeconds(), exp: nowSeconds() + 300 })}`;
    const { createHmac } = await import('node:crypto');
    const hs256 = `${hmacWithPublicKey}.${createHmac('sha256', JSON.stringify(pub!.publicJwk)).update(hmacWithPublicKey).digest('base64url')}`;
    const cases: [string, string, RegExp][] = [
      ['wrong audience', await issuer.sign({ ...MAIN, aud: 'someone-else' }), /"aud"/],
      ['wrong issuer', await issuer.sign({ ...MAIN, iss: 'https://issuer.invalid' }), /issuer that this server trusts/],
      ['http issuer', await issuer.sign({ ...MAIN, iss: issuer.url.replace('https:', 'http:') }), /issuer that this server trusts/],
      ['expired', await issuer.sign(MAIN, { issuedAt: nowSeconds() - 600, expiresIn: nowSeconds() - 120 }), /expired/],
      ['issued in the future', await issuer.sign(MAIN, { issuedAt: nowSeconds() + 600, expiresIn: nowSeconds() + 900 }), /iat/],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...MAIN, iss: issuer.url, iat: nowSeconds(), exp: nowSeconds() + 300 })}.`, /asymmetric algorithm/],
      ['HS256 keyed with the public key', hs256, /asymmetric algorithm/],
      ['unknown kid', await issuer.sign(MAIN, { key: unpublished }), /signing key/],
      ['known kid, other key', await issuer.sign(MAIN, { key: other }), /signature/],
      ['tampered payload', (await issuer.sign(MAIN)).replace(/\.([^.]+)\./, `.${b64({ ...MAIN, iss: issuer.url, repository: 'acme/images', iat: nowSeconds(), exp: nowSeconds() + 300 })}.`), /signature/],
      ['not a JWT payload', `${b64({ alg: 'ES256' })}.bm90LWpzb24.c2ln`, /cannot be decoded/],
    ];
    for (const [name, token, detail] of cases) {
      const res = await as(token).post('/v1/uploads', begin);
      assert.equal(res.status, 401, `${name}: ${JSON.stringify(res.json)}`);
      assert.match(res.json.detail, detail, name);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="imgsrv", error="invalid_token"');
    }
  });

  it('answers 403 without echoing claims when no rule admits the token', async () => {
    const res = await as(await issuer.sign({ ...MAIN, ref: 'refs/heads/evil-branch', sub: 'repo:acme/images:ref:refs/heads/evil-branch' })).post('/v1/uploads', begin);
    assert.equal(res.status, 403);
    assert.equal(res.json.code, 'no_matching_rule');
    assert.doesNotMatch(JSON.stringify(res.json), /evil-branch|acme/);
  });

  it('gives a token only the roles of the rules that admit it', async () => {
    const rule = await admin.post('/v1/auth/oidc-provisioning-rules', {
      id: 'auth-bot',
      display_name: 'auth bot',
      issuer_url: issuer.url,
      audience: 'imgsrv-admin',
      forwarded_claims: ['repository'],
      condition: 'claims.repository == "acme/access"',
      assign_role_ids: ['auth-manager'],
    });
    assert.equal(rule.status, 201);
    const bot = as(await issuer.sign({ sub: 'repo:acme/access', aud: 'imgsrv-admin', repository: 'acme/access' }));
    assert.equal((await bot.get('/v1/auth/roles')).status, 200);
    const upload = await bot.post('/v1/uploads', begin);
    assert.equal(upload.status, 403, 'an auth-manager without content-writer cannot upload');
    // And the content writer of the first rule cannot manage auth.
    assert.equal((await as(await issuer.sign(MAIN)).get('/v1/auth/principals')).status, 403);
    assert.equal((await admin.delete('/v1/auth/oidc-provisioning-rules/auth-bot')).status, 204);
    assert.equal((await bot.get('/v1/auth/roles')).status, 401, 'a deleted rule admits nothing, at once');
  });

  it('stops a cost-heavy condition at evaluation: the token is refused, the server stays responsive', async () => {
    const heavy = await admin.post('/v1/auth/oidc-provisioning-rules', {
      display_name: 'quartic',
      issuer_url: issuer.url,
      audience: 'imgsrv-heavy',
      forwarded_claims: ['groups'],
      condition: 'claims.groups.all(a, claims.groups.all(b, claims.groups.all(c, claims.groups.all(d, a + b + c + d != ""))))',
    });
    assert.equal(heavy.status, 201, JSON.stringify(heavy.json));
    const groups = Array.from({ length: 200 }, (_, i) => `g${i}`);
    const started = Date.now();
    const res = await as(await issuer.sign({ sub: 'heavy', aud: 'imgsrv-heavy', groups })).post('/v1/uploads', begin);
    assert.equal(res.status, 403);
    assert.ok(Date.now() - started < 10_000, 'stopped by the budget, not run to the end (1.6e9 iterations)');
    await server.waitForOutput(/over its evaluation budget/);
    assert.equal((await as(await issuer.sign(MAIN)).post('/v1/uploads', begin)).status, 201, 'the next condition is evaluated normally');
  });

  it('answers 503 when the issuer of a rule cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const gone = `https://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const rule = await admin.post('/v1/auth/oidc-provisioning-rules', { display_name: 'gone', issuer_url: gone, audience: AUDIENCE, condition: 'claims.sub == "x"' });
    assert.equal(rule.status, 201);
    const res = await as(await issuer.sign({ ...MAIN, iss: gone })).post('/v1/uploads', begin);
    assert.equal(res.status, 503);
    assert.equal(res.json.code, 'oidc_issuer_unavailable');
  });

  it('reconciles: previews and removes the roles of principals whose stored claims no longer match', async () => {
    const principalId = (await admin.get('/v1/auth/principals')).json.principals.find((p: { attributes: { sub?: string } }) => p.attributes.sub === MAIN.sub).id;
    const rule = (await admin.get(`/v1/auth/oidc-provisioning-rules/${ruleId}`)).json;

    const unchanged = await admin.get(`/v1/auth/oidc-provisioning-rules/${ruleId}/reconciliation`);
    assert.deepEqual(unchanged.json, { rule_id: ruleId, unassign_role_ids: [], principals: [], applied: false });

    const moved = await admin.put(`/v1/auth/oidc-provisioning-rules/${ruleId}`, { json: { ...rule, condition: 'claims.ref == "refs/heads/release"' } });
    assert.equal(moved.status, 200);
    const preview = await admin.get(`/v1/auth/oidc-provisioning-rules/${ruleId}/reconciliation`);
    assert.equal(preview.json.applied, false);
    assert.deepEqual(preview.json.unassign_role_ids, ['content-writer']);
    assert.deepEqual(
      preview.json.principals.map((p: { id: string }) => p.id),
      [principalId],
    );
    assert.deepEqual((await admin.get(`/v1/auth/principals/${principalId}`)).json.role_ids, ['content-writer'], 'a preview changes nothing');

    const applied = await admin.post(`/v1/auth/oidc-provisioning-rules/${ruleId}/reconciliation`);
    assert.equal(applied.status, 200);
    assert.equal(applied.json.applied, true);
    assert.deepEqual(applied.json.principals[0].role_ids, []);
    assert.deepEqual((await admin.get(`/v1/auth/principals/${principalId}`)).json.role_ids, []);
    const again = await admin.post(`/v1/auth/oidc-provisioning-rules/${ruleId}/reconciliation`);
    assert.deepEqual(again.json, { rule_id: ruleId, unassign_role_ids: [], principals: [], applied: true }, 'applying again changes nothing');

    // A deleted rule can still be reconciled: a principal it admitted since loses its roles.
    await admin.put(`/v1/auth/oidc-provisioning-rules/${ruleId}`, { json: rule });
    assert.equal((await as(await issuer.sign(MAIN)).post('/v1/uploads', begin)).status, 201);
    assert.deepEqual((await admin.get(`/v1/auth/principals/${principalId}`)).json.role_ids, ['content-writer']);
    assert.equal((await admin.delete(`/v1/auth/oidc-provisioning-rules/${ruleId}`)).status, 204);
    const orphan = await admin.post(`/v1/auth/oidc-provisioning-rules/${ruleId}/reconciliation`);
    assert.deepEqual(orphan.json.principals.map((p: { id: string }) => p.id), [principalId]);
    assert.deepEqual((await admin.get(`/v1/auth/principals/${principalId}`)).json.role_ids, []);
    assert.ok(server.output().includes('"oidc_rule.reconcile"'));
  });
});
