import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useServer } from '../helpers/suite.ts';

const RULES = '/v1/auth/oidc-provisioning-rules';
const rule = {
  display_name: 'acme/images releases',
  issuer_url: 'https://token.actions.githubusercontent.com',
  audience: 'https://imgsrv.example',
  forwarded_claims: ['repository', 'ref', 'environment'],
  condition: 'claims.repository == "acme/images" && claims.ref.startsWith("refs/tags/v")',
};

describe('OIDC provisioning rules API', () => {
  const ctx = useServer();

  it('creates (with a generated or chosen id), gets, lists, replaces and deletes rules', async () => {
    const created = await ctx.api.post(RULES, rule);
    assert.equal(created.status, 201);
    assert.match(created.json.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual({ ...created.json, id: 'x' }, { id: 'x', ...rule, assign_role_ids: ['content-writer'], enabled: true });
    assert.deepEqual((await ctx.api.get(`${RULES}/${created.json.id}`)).json, created.json);

    const chosen = await ctx.api.post(RULES, { ...rule, id: 'gh-releases', enabled: false, assign_role_ids: ['content-writer', 'auth-manager'] });
    assert.equal(chosen.status, 201);
    assert.equal(chosen.json.id, 'gh-releases');
    assert.deepEqual(chosen.json.assign_role_ids, ['content-writer', 'auth-manager']);
    assert.equal(chosen.json.enabled, false);
    const duplicate = await ctx.api.post(RULES, { ...rule, id: 'gh-releases' });
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.json.code, 'oidc_rule_exists');

    assert.deepEqual(
      (await ctx.api.get(RULES)).json.rules.map((r: { id: string }) => r.id),
      [created.json.id, 'gh-releases'],
    );

    const replaced = await ctx.api.put(`${RULES}/gh-releases`, { json: { ...rule, id: 'gh-releases', audience: 'other', forwarded_claims: [], condition: 'claims.sub == "x"' } });
    assert.equal(replaced.status, 200);
    assert.deepEqual(replaced.json, { id: 'gh-releases', ...rule, audience: 'other', forwarded_claims: [], condition: 'claims.sub == "x"', assign_role_ids: ['content-writer'], enabled: true });
    assert.deepEqual((await ctx.api.get(`${RULES}/gh-releases`)).json, replaced.json);

    assert.equal((await ctx.api.delete(`${RULES}/gh-releases`)).status, 204);
    assert.equal((await ctx.api.get(`${RULES}/gh-releases`)).status, 404);
    assert.equal((await ctx.api.delete(`${RULES}/gh-releases`)).status, 404);
    assert.equal((await ctx.api.put(`${RULES}/gh-releases`, { json: rule })).status, 404);
    assert.deepEqual(
      (await ctx.api.get(RULES)).json.rules.map((r: { id: string }) => r.id),
      [created.json.id],
    );
    assert.equal((await ctx.api.post(RULES, { ...rule, id: 'gh-releases' })).status, 201, 'a deleted id can be used again');
  });

  it('rejects invalid rules with a 400 naming the problem; conditions with the checker message', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ condition: 'claims.repository == ' }, /^condition: Unexpected token: EOF/],
      [{ condition: 'claims.repository' }, /must be a bool expression/],
      [{ condition: 'size(claims.ref) + 1' }, /must be a bool expression, but it is of type int/],
      [{ condition: 'sha256(claims.ref) == "x"' }, /no matching overload for 'sha256/],
      [{ condition: 'claims.job_workflow_ref == "x"' }, /No such key: job_workflow_ref/],
      [{ condition: 'claims.ref.matches("^refs/tags/(v[0-9]+)+$")' }, /regular expressions/],
      [{ condition: `claims.ref == "${'x'.repeat(4096)}"` }, /condition.*4096/],
      [{ condition: Array.from({ length: 100 }, (_, i) => `claims.ref == "v${i}"`).join(' || ') }, /Exceeded maxAstNodes/],
      [{ condition: '' }, /condition/],
      [{ issuer_url: 'http://token.actions.githubusercontent.com' }, /https URL/],
      [{ issuer_url: 'https://issuer.example/?tenant=1' }, /https URL/],
      [{ issuer_url: 'not a url' }, /issuer_url/],
      [{ audience: '' }, /audience/],
      [{ forwarded_claims: ['repository', 'repository'] }, /must not repeat/],
      [{ forwarded_claims: ['job-workflow-ref'] }, /must be an identifier/],
      [{ forwarded_claims: ['sub'] }, /not iss, sub or aud/],
      [{ assign_role_ids: [] }, /assign_role_ids/],
      [{ assign_role_ids: ['root'] }, /assign_role_ids/],
      [{ id: 'has spaces' }, /id must be/],
      [{ enabled: 'yes' }, /enabled/],
      [{ scopes: ['all'] }, /unknown field "scopes"/],
    ];
    for (const [change, detail] of cases) {
      const res = await ctx.api.post(RULES, { ...rule, ...change });
      assert.equal(res.status, 400, JSON.stringify(change).slice(0, 80));
      assert.match(res.json.detail, detail, JSON.stringify(change).slice(0, 80));
    }
    const { display_name: _omitted, ...noName } = rule;
    assert.equal((await ctx.api.post(RULES, noName)).status, 400);

    const saved = await ctx.api.post(RULES, { ...rule, id: 'keep' });
    const mismatch = await ctx.api.put(`${RULES}/keep`, { json: { ...rule, id: 'other' } });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.json.detail, /differs from the path/);
    assert.equal((await ctx.api.put(`${RULES}/keep`, { json: { ...rule, condition: '1' } })).status, 400);
    assert.deepEqual((await ctx.api.get(`${RULES}/keep`)).json, saved.json, 'a rejected save changes nothing');
  });

  it('previews and applies reconciliation of a rule that admitted nobody; an unknown rule is a 400', async () => {
    await ctx.api.post(RULES, { ...rule, id: 'quiet' });
    for (const [method, applied] of [
      ['GET', false],
      ['POST', true],
    ] as const) {
      const res = await ctx.api.request(method, `${RULES}/quiet/reconciliation`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { rule_id: 'quiet', unassign_role_ids: [], principals: [], applied });
      const unknown = await ctx.api.request(method, `${RULES}/nope/reconciliation`);
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json.code, 'unknown_oidc_rule');
    }
  });

  it('audits every rule change and applied reconciliation', () => {
    const actions = ctx.server
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"audit"'))
      .map((l) => (JSON.parse(l) as { audit: { action: string; actor: string } }).audit);
    assert.ok(actions.every((a) => a.actor === 'admin'));
    const count = (action: string) => actions.filter((a) => a.action === action).length;
    assert.deepEqual([count('oidc_rule.create'), count('oidc_rule.update'), count('oidc_rule.delete'), count('oidc_rule.reconcile')], [5, 1, 1, 1]);
  });
});
