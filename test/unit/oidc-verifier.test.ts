import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createOidcVerifier, type OidcVerifierOptions } from '../../src/auth/oidc-verifier.ts';
import { DomainError } from '../../src/domain/errors.ts';
import { pinnedFetch } from '../helpers/client.ts';
import { signingKey, startIssuer, type TestIssuer } from '../helpers/oidc-issuer.ts';

const AUD = ['imgsrv'];
const claims = { sub: 'repo:acme/images', aud: 'imgsrv' };

const rejectsWith = (p: Promise<unknown>, kind: string, code: string) =>
  assert.rejects(p, (e: unknown) => e instanceof DomainError && e.kind === kind && e.code === code);

describe('OIDC verifier (discovery, JWKS, claims)', () => {
  let issuer: TestIssuer;
  const verifierFor = (over: Partial<OidcVerifierOptions> = {}) =>
    createOidcVerifier({
      timeoutMs: 500,
      clockToleranceSeconds: 30,
      maxTokenAgeSeconds: 3600,
      discoveryTtlMs: 60_000,
      jwksCooldownMs: 0,
      jwksMaxAgeMs: 60_000,
      now: () => new Date(),
      fetch: pinnedFetch(issuer.ca),
      ...over,
    });

  before(async () => {
    issuer = await startIssuer();
  });
  after(() => issuer.close());
  beforeEach(() => {
    issuer.intercept = undefined;
    for (const k of Object.keys(issuer.hits)) delete issuer.hits[k];
  });

  it('verifies ES256 and RS256 tokens, fetching discovery and keys once', async () => {
    const v = verifierFor();
    for (const key of issuer.published) {
      const payload = await v.verify(await issuer.sign(claims, { key }), issuer.url, AUD);
      assert.equal(payload.sub, claims.sub);
    }
    assert.deepEqual(issuer.hits, { '/.well-known/openid-configuration': 1, '/jwks': 1 });
  });

  it('refetches the key set when a token names a new kid (key rotation), at most once per cooldown', async () => {
    const v = verifierFor({ jwksCooldownMs: 60_000 });
    await v.verify(await issuer.sign(claims), issuer.url, AUD);
    const rotated = await signingKey('key-3');
    issuer.published.push(rotated);
    try {
      await rejectsWith(v.verify(await issuer.sign(claims, { key: rotated }), issuer.url, AUD), 'unauthenticated', 'unknown_signing_key');
      assert.equal(issuer.hits['/jwks'], 1, 'within the cooldown the issuer is not asked again');
      const eager = verifierFor({ jwksCooldownMs: 0 });
      await eager.verify(await issuer.sign(claims), issuer.url, AUD);
      assert.equal((await eager.verify(await issuer.sign(claims, { key: rotated }), issuer.url, AUD)).sub, claims.sub);
    } finally {
      issuer.published.pop();
    }
  });

  it('answers unavailable when the issuer hangs, fails, lies about itself or serves too much', async () => {
    const token = await issuer.sign(claims);
    const cases: [string, (res: ServerResponse, path: string) => boolean][] = [
      ['hangs', () => true],
      ['500', (res) => (res.writeHead(500).end(), true)],
      ['not JSON', (res) => (res.writeHead(200, { 'content-type': 'application/json' }).end('<html>'), true)],
      ['another issuer', (res, path) => path.startsWith('/.well-known') && (res.end(JSON.stringify({ issuer: 'https://evil.example', jwks_uri: `${issuer.url}/jwks` })), true)],
      ['http jwks_uri', (res, path) => path.startsWith('/.well-known') && (res.end(JSON.stringify({ issuer: issuer.url, jwks_uri: `${issuer.url.replace('https', 'http')}/jwks` })), true)],
      ['redirect', (res) => (res.writeHead(302, { location: 'https://example.com/' }).end(), true)],
      ['huge JWKS', (res, path) => path === '/jwks' && (res.end(JSON.stringify({ keys: [], pad: 'x'.repeat(2 * 1024 * 1024) })), true)],
      ['JWKS hangs', (_res, path) => path === '/jwks'],
    ];
    for (const [name, handler] of cases) {
      issuer.intercept = (req, res) => handler(res, req.url ?? '');
      const started = Date.now();
      await rejectsWith(verifierFor().verify(token, issuer.url, AUD), 'unavailable', 'oidc_issuer_unavailable').catch((e: Error) => {
        throw new Error(`${name}: ${e.message}`);
      });
      assert.ok(Date.now() - started < 3000, `${name}: bounded by the timeout`);
    }
  });

  it('does not cache a failed discovery', async () => {
    const v = verifierFor();
    issuer.intercept = (_req, res) => (res.writeHead(503).end(), true);
    await rejectsWith(v.verify(await issuer.sign(claims), issuer.url, AUD), 'unavailable', 'oidc_issuer_unavailable');
    issuer.intercept = undefined;
    assert.equal((await v.verify(await issuer.sign(claims), issuer.url, AUD)).sub, claims.sub);
  });

  it('checks exp, nbf and iat with the configured skew, and requires sub', async () => {
    const now = Math.floor(Date.now() / 1000);
    const v = verifierFor();
    assert.ok(await v.verify(await issuer.sign(claims, { issuedAt: now - 60, expiresIn: now - 10 }), issuer.url, AUD), 'expired 10 s ago is within the 30 s skew');
    await rejectsWith(v.verify(await issuer.sign(claims, { issuedAt: now - 120, expiresIn: now - 60 }), issuer.url, AUD), 'unauthenticated', 'token_expired');
    await rejectsWith(v.verify(await issuer.sign({ ...claims, nbf: now + 120 }), issuer.url, AUD), 'unauthenticated', 'invalid_token_claims');
    await rejectsWith(v.verify(await issuer.sign(claims, { issuedAt: now - 7200, expiresIn: now + 60 }), issuer.url, AUD), 'unauthenticated', 'token_expired');
    await rejectsWith(v.verify(await issuer.sign({ aud: 'imgsrv' }), issuer.url, AUD), 'unauthenticated', 'invalid_token_claims');
    await rejectsWith(v.verify(await issuer.sign({ aud: 'imgsrv', sub: 42 } as never), issuer.url, AUD), 'unauthenticated', 'invalid_token_claims');
    await rejectsWith(v.verify(await issuer.sign({ ...claims, aud: ['other', 'another'] }), issuer.url, AUD), 'unauthenticated', 'invalid_token_claims');
    assert.ok(await v.verify(await issuer.sign({ ...claims, aud: ['other', 'imgsrv'] }), issuer.url, AUD), 'aud may be a list');
  });

  it('peeks the issuer, refusing none, HMAC and non-https issuers before any request', () => {
    const v = verifierFor();
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    assert.deepEqual(v.peek(`${part({ alg: 'ES256' })}.${part({ iss: issuer.url })}.sig`), { issuer: issuer.url });
    for (const alg of ['none', 'HS256', 'HS512', 'RSA-OAEP']) {
      assert.throws(() => v.peek(`${part({ alg })}.${part({ iss: issuer.url })}.`), (e: unknown) => e instanceof DomainError && e.code === 'unsupported_jwt_algorithm', alg);
    }
    assert.throws(() => v.peek(`${part({ alg: 'ES256' })}.${part({ iss: 'http://ci.example' })}.sig`), (e: unknown) => e instanceof DomainError && e.code === 'untrusted_issuer');
    assert.deepEqual(issuer.hits, {});
  });
});
