import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiToken } from '../../src/domain/auth.ts';
import type { OidcRule } from '../../src/domain/oidc.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { at, rejectsWith, T0 } from './common.ts';


const token = (id: string, principalId: string): ApiToken => ({ id, principalId, name: id, secretHash: 'ab'.repeat(32), expiresAt: at(86400), createdAt: T0 });
const rule = (id: string, over: Partial<OidcRule> = {}): OidcRule => ({
  id,
  displayName: id,
  issuerUrl: 'https://ci.example',
  audience: 'imgsrv',
  forwardedClaims: ['repository'],
  condition: 'claims.repository == "acme/images"',
  assignRoleIds: ['content-writer'],
  enabled: true,
  createdAt: T0,
  updatedAt: T0,
  ...over,
});
const GH = { issuer: 'https://ci.example', subject: 'repo:acme/images' };

/** AuthRepository management and OidcRepository cases of the MetadataStore conformance suite. */
export function describeAuthCases(store: () => MetadataStore): void {
  const principal = (id: string, roles: string[] = [], seconds = 0) =>
    store()
      .insertPrincipal({ id, kind: 'user', displayName: id, attributes: {}, now: at(seconds) })
      .then(() => Promise.all(roles.map((roleId) => store().grantRole({ principalId: id, roleId, now: at(seconds) }))));

  describe('auth management', () => {
    it('lists every principal, oldest first, with roles', async () => {
      await principal('b', ['content-writer'], 2);
      await principal('a', [], 1);
      assert.deepEqual(
        (await store().listPrincipals()).map((p) => [p.id, p.roleIds]),
        [
          ['a', []],
          ['b', ['content-writer']],
        ],
      );
    });

    it('revokes roles, but never the guarded role from its last holder', async () => {
      await principal('p1', ['auth-manager', 'content-writer']);
      await principal('p2', ['auth-manager']);
      const revoke = (principalId: string, roleId: string) => store().revokeRole({ principalId, roleId, guardRoleId: 'auth-manager', now: at(1) });
      assert.equal(await revoke('p1', 'content-writer'), 'removed');
      assert.equal(await revoke('p1', 'content-writer'), 'not_held');
      assert.equal(await revoke('p1', 'auth-manager'), 'removed');
      assert.equal(await revoke('p2', 'auth-manager'), 'last_holder');
      assert.deepEqual((await store().getPrincipal('p2'))!.roleIds, ['auth-manager']);
      assert.equal(await revoke('p1', 'auth-manager'), 'not_held', 'a non-holder is not the last holder');
    });

    it('lists, revokes (keeping the first revocation) and touches API tokens', async () => {
      await principal('p1');
      await principal('p2');
      await store().insertApiToken({ ...token('t2', 'p1'), createdAt: at(2) });
      await store().insertApiToken({ ...token('t1', 'p1'), createdAt: at(1) });
      await store().insertApiToken(token('other', 'p2'));
      assert.deepEqual(
        (await store().listApiTokens('p1')).map((t) => t.id),
        ['t1', 't2'],
      );
      assert.deepEqual(await store().listApiTokens('nobody'), []);

      assert.deepEqual((await store().revokeApiToken({ id: 't1', now: at(5) }))!.revokedAt, at(5));
      assert.deepEqual((await store().revokeApiToken({ id: 't1', now: at(9) }))!.revokedAt, at(5));
      assert.equal(await store().revokeApiToken({ id: 'missing', now: at(5) }), undefined);

      await store().touchApiToken({ id: 't2', now: at(100), staleBefore: at(40) });
      assert.deepEqual((await store().getApiToken('t2'))!.lastUsedAt, at(100));
      await store().touchApiToken({ id: 't2', now: at(130), staleBefore: at(70) });
      assert.deepEqual((await store().getApiToken('t2'))!.lastUsedAt, at(100), 'a recent use is not overwritten');
      await store().touchApiToken({ id: 't2', now: at(200), staleBefore: at(140) });
      assert.deepEqual((await store().getApiToken('t2'))!.lastUsedAt, at(200));
    });
  });

  describe('OIDC rules and provisioned principals', () => {
    it('saves, lists, replaces and deletes rules, keeping tombstones that an insert revives', async () => {
      await store().insertOidcRule(rule('r1'));
      await store().insertOidcRule(rule('r2', { issuerUrl: 'https://other.example', createdAt: at(1) }));
      await store().insertOidcRule(rule('r3', { enabled: false, createdAt: at(2) }));
      await rejectsWith(store().insertOidcRule(rule('r1')), 'conflict');
      assert.deepEqual(await store().getOidcRule('r1'), rule('r1'));
      assert.deepEqual(
        (await store().listOidcRules()).map((r) => r.id),
        ['r1', 'r2', 'r3'],
      );
      assert.deepEqual(
        (await store().listEnabledOidcRules('https://ci.example')).map((r) => r.id),
        ['r1'],
      );

      const replaced = rule('r1', { condition: 'true', forwardedClaims: [], assignRoleIds: ['auth-manager'], updatedAt: at(5), createdAt: at(99) });
      assert.equal(await store().updateOidcRule(replaced), true);
      assert.deepEqual(await store().getOidcRule('r1'), { ...replaced, createdAt: T0 });
      assert.equal(await store().updateOidcRule(rule('missing')), false);

      assert.equal(await store().deleteOidcRule({ id: 'r1', now: at(6) }), true);
      assert.equal(await store().deleteOidcRule({ id: 'r1', now: at(7) }), false);
      assert.deepEqual((await store().getOidcRule('r1'))!.deletedAt, at(6));
      assert.equal((await store().getOidcRule('r1'))!.enabled, false);
      assert.equal(await store().updateOidcRule(replaced), false, 'a deleted rule cannot be replaced');
      assert.deepEqual(
        (await store().listOidcRules()).map((r) => r.id),
        ['r2', 'r3'],
      );
      assert.deepEqual(await store().listEnabledOidcRules('https://ci.example'), []);

      await store().insertOidcRule(rule('r1', { createdAt: at(8), updatedAt: at(8) }));
      assert.deepEqual(await store().getOidcRule('r1'), rule('r1', { createdAt: at(8), updatedAt: at(8) }));
    });

    it('provisions one service principal per identity, updating its claims and accumulating grants', async () => {
      await store().insertOidcRule(rule('r1'));
      await store().insertOidcRule(rule('r2', { assignRoleIds: ['auth-manager'] }));
      const provision = (claims: Record<string, unknown>, ruleIds: string[], roleIds: string[], newPrincipalId: string) =>
        store().provisionOidcPrincipal({ identity: GH, newPrincipalId, displayName: 'ci', claims, ruleIds, roleIds, now: at(1) });

      const first = await provision({ sub: GH.subject, repository: 'acme/images' }, ['r1'], ['content-writer'], 'p-new');
      assert.equal(first.created, true);
      assert.deepEqual(first.principal, { id: 'p-new', kind: 'service', displayName: 'ci', attributes: { sub: GH.subject, repository: 'acme/images' }, roleIds: ['content-writer'], createdAt: at(1) });

      const again = await provision({ sub: GH.subject, repository: 'acme/images', ref: 'main' }, ['r1', 'r2'], ['auth-manager', 'content-writer'], 'p-unused');
      assert.equal(again.created, false);
      assert.equal(again.principal.id, 'p-new');
      assert.deepEqual(again.principal.attributes, { sub: GH.subject, repository: 'acme/images', ref: 'main' });
      assert.deepEqual(again.principal.roleIds, ['auth-manager', 'content-writer']);
      assert.equal(await store().getPrincipal('p-unused'), undefined);

      const other = await store().provisionOidcPrincipal({ identity: { ...GH, subject: 'repo:acme/other' }, newPrincipalId: 'p-other', displayName: 'o', claims: {}, ruleIds: ['r1'], roleIds: [], now: at(2) });
      assert.equal(other.created, true);

      const grantees = await store().listOidcGrantees('r1');
      assert.deepEqual(
        grantees.map((g) => [g.principal.id, g.identity, g.ruleIds]),
        [
          ['p-new', GH, ['r1', 'r2']],
          ['p-other', { ...GH, subject: 'repo:acme/other' }, ['r1']],
        ],
      );
      assert.deepEqual(await store().listOidcGrantees('r-none'), []);
    });

    it('revokes a grant and its roles at once, but never the last holder of the guarded role', async () => {
      await store().insertOidcRule(rule('r1', { assignRoleIds: ['auth-manager', 'content-writer'] }));
      await store().provisionOidcPrincipal({ identity: GH, newPrincipalId: 'p1', displayName: 'ci', claims: {}, ruleIds: ['r1'], roleIds: ['auth-manager', 'content-writer'], now: at(1) });
      const revoke = (roleIds: string[]) => store().revokeOidcGrant({ principalId: 'p1', ruleId: 'r1', roleIds, guardRoleId: 'auth-manager', now: at(2) });

      assert.equal(await revoke(['auth-manager', 'content-writer']), 'last_holder');
      assert.deepEqual((await store().getPrincipal('p1'))!.roleIds, ['auth-manager', 'content-writer'], 'nothing changed');
      assert.equal((await store().listOidcGrantees('r1')).length, 1);

      await principal('admin', ['auth-manager']);
      assert.equal(await revoke(['auth-manager', 'content-writer']), 'removed');
      assert.deepEqual((await store().getPrincipal('p1'))!.roleIds, []);
      assert.deepEqual(await store().listOidcGrantees('r1'), []);
      assert.equal(await revoke(['content-writer']), 'removed', 'idempotent');
    });
  });
}
