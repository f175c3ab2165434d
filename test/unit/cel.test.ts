import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createCelEvaluator } from '../../src/auth/cel-evaluator.ts';
import { checkCondition } from '../../src/auth/cel.ts';

const FORWARDED = ['repository', 'ref', 'groups'];
const identity = { issuer: 'https://ci.example', subject: 'repo:acme/images' };
const claims = { iss: identity.issuer, sub: identity.subject, aud: 'imgsrv', repository: 'acme/images', ref: 'refs/heads/main', groups: ['dev', 'ops'] };

describe('CEL conditions: checked when saved', () => {
  it('accepts boolean conditions over forwarded and standard claims and the identity', () => {
    for (const condition of [
      'claims.repository == "acme/images" && claims.ref == "refs/heads/main"',
      'claims.sub.startsWith("repo:acme/") || identity.subject == "x"',
      '"ops" in claims.groups && has(claims.ref)',
      'claims.groups.exists(g, g == "ops") && claims.iss == identity.issuer',
    ]) {
      assert.deepEqual(checkCondition(condition, FORWARDED), { ok: true }, condition);
    }
  });

  it('rejects with the checker message: syntax, non-bool, unknown function, claim not forwarded, regex, too complex', () => {
    const cases: [string, RegExp][] = [
      ['claims.repository ==', /Unexpected token/],
      ['claims.repository == "a" &&& true', /Unexpected|Expected/],
      ['size(claims.ref)', /must be a bool expression, but it is of type int/],
      ['claims.repository', /must be a bool expression.*dyn.*compare claims explicitly/],
      ['"constant"', /of type string/],
      ['frobnicate(claims.repository)', /no matching overload for 'frobnicate/],
      ['claims.workflow == "release"', /No such key: workflow[\s\S]*forwarded_claims/],
      ['unknown_variable == 1', /Unknown variable|unknown_variable/],
      ['claims.repository.matches("^(a+)+$")', /matches\(\) is not allowed: regular expressions/],
      [Array.from({ length: 120 }, (_, i) => `claims.ref == "${i}"`).join(' || '), /Exceeded maxAstNodes/],
      [`${'('.repeat(40)}true${')'.repeat(40)}`, /Exceeded maxDepth/],
    ];
    for (const [condition, message] of cases) {
      const result = checkCondition(condition, FORWARDED);
      assert.equal(result.ok, false, condition);
      assert.match((result as { message: string }).message, message, condition.slice(0, 60));
    }
  });
});

describe('CEL conditions: evaluated with a budget', () => {
  const cel = createCelEvaluator({ budgetMs: 200 });
  after(() => cel.close());
  const evaluate = (condition: string, c: Record<string, unknown> = claims) => cel.evaluate({ condition, forwardedClaims: FORWARDED, claims: c, identity });

  it('evaluates true, false, and an error when a claim is absent', async () => {
    assert.deepEqual(await evaluate('claims.repository == "acme/images" && "ops" in claims.groups'), { outcome: 'true' });
    assert.deepEqual(await evaluate('claims.ref == "refs/heads/dev"'), { outcome: 'false' });
    const absent = await evaluate('claims.ref == "refs/heads/main"', { iss: identity.issuer, sub: identity.subject });
    assert.equal(absent.outcome, 'error');
    assert.deepEqual(await evaluate('has(claims.ref) && claims.ref == "x"', { iss: identity.issuer }), { outcome: 'false' });
  });

  it('stops a cost-heavy condition at its budget and keeps serving', async () => {
    const groups = Array.from({ length: 300 }, (_, i) => `g${i}`);
    const started = process.hrtime.bigint();
    const reply = await evaluate('claims.groups.all(a, claims.groups.all(b, claims.groups.all(c, claims.groups.all(d, a + b + c + d != ""))))', { ...claims, groups });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.deepEqual(reply, { outcome: 'over_budget' });
    assert.ok(ms < 5000, `stopped after ${ms} ms, not after 8.1e9 iterations`);
    assert.deepEqual(await evaluate('claims.repository == "acme/images"'), { outcome: 'true' }, 'a fresh worker evaluates the next condition');
  });

  it('fails a condition that exhausts its memory cap instead of the server', async () => {
    const roomy = createCelEvaluator({ budgetMs: 60_000, maxHeapMb: 32 });
    try {
      const groups = Array.from({ length: 64 }, (_, i) => `g${i}`);
      const reply = await roomy.evaluate({
        condition: 'claims.groups.map(a, claims.groups.map(b, claims.groups.map(c, claims.groups.map(d, [a, b, c, d])))).size() > 0',
        forwardedClaims: FORWARDED,
        claims: { ...claims, groups },
        identity,
      });
      assert.equal(reply.outcome, 'error');
      assert.match((reply as { message: string }).message, /memory/i);
      assert.deepEqual(await roomy.evaluate({ condition: 'claims.ref == "refs/heads/main"', forwardedClaims: FORWARDED, claims, identity }), { outcome: 'true' });
    } finally {
      await roomy.close();
    }
  });
});
