import type { OidcRule } from '../../domain/oidc.ts';
import type { OidcRepository } from '../metadata-store.ts';
import type { SqlAdapter } from './adapter.ts';
import { removeRoles, withRoles } from './auth.ts';
import type { OidcRulesTable } from './schema.ts';

const ruleFromRow = (r: OidcRulesTable): OidcRule => ({
  id: r.id,
  displayName: r.display_name,
  issuerUrl: r.issuer_url,
  audience: r.audience,
  forwardedClaims: JSON.parse(r.forwarded_claims) as string[],
  condition: r.condition,
  assignRoleIds: JSON.parse(r.assign_role_ids) as string[],
  enabled: Number(r.enabled) === 1,
  createdAt: new Date(Number(r.created_at)),
  updatedAt: new Date(Number(r.updated_at)),
  ...(r.deleted_at !== null && { deletedAt: new Date(Number(r.deleted_at)) }),
});

/** The columns a save replaces (everything but id and created_at). */
const savedColumns = (rule: OidcRule) => ({
  display_name: rule.displayName,
  issuer_url: rule.issuerUrl,
  audience: rule.audience,
  forwarded_claims: JSON.stringify(rule.forwardedClaims),
  condition: rule.condition,
  assign_role_ids: JSON.stringify(rule.assignRoleIds),
  enabled: rule.enabled ? 1 : 0,
  deleted_at: null,
  updated_at: rule.updatedAt.getTime(),
});

/** OIDC provisioning rules, provisioned identities and the grants rules made. */
export function sqlOidc(a: SqlAdapter): OidcRepository {
  const { db } = a;
  const live = () => db.selectFrom('oidc_rules').selectAll().where('deleted_at', 'is', null);
  return {
    async listOidcRules() {
      return (await live().orderBy('created_at').orderBy('id').execute()).map(ruleFromRow);
    },

    async listEnabledOidcRules(issuer) {
      return (await live().where('issuer_url', '=', issuer).where('enabled', '=', 1).orderBy('created_at').orderBy('id').execute()).map(ruleFromRow);
    },

    async getOidcRule(id) {
      const row = await db.selectFrom('oidc_rules').selectAll().where('id', '=', id).executeTakeFirst();
      return row && ruleFromRow(row);
    },

    insertOidcRule(rule) {
      return a.transaction(async (tx) => {
        const revived = await tx.updateTable('oidc_rules').set({ ...savedColumns(rule), created_at: rule.createdAt.getTime() }).where('id', '=', rule.id).where('deleted_at', 'is not', null).executeTakeFirst();
        if (Number(revived.numUpdatedRows) === 1) return;
        // A live rule with this id makes the insert fail with `conflict`.
        await tx.insertInto('oidc_rules').values({ id: rule.id, ...savedColumns(rule), created_at: rule.createdAt.getTime() }).execute();
      });
    },

    async updateOidcRule(rule) {
      const r = await db.updateTable('oidc_rules').set(savedColumns(rule)).where('id', '=', rule.id).where('deleted_at', 'is', null).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async deleteOidcRule({ id, now }) {
      const r = await db.updateTable('oidc_rules').set({ deleted_at: now.getTime(), enabled: 0, updated_at: now.getTime() }).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    provisionOidcPrincipal({ identity, newPrincipalId, displayName, claims, ruleIds, roleIds, now }) {
      const t = now.getTime();
      const attributes = JSON.stringify(claims);
      return a.transaction(async (tx) => {
        const known = await tx.selectFrom('oidc_identities').select('principal_id').where('issuer', '=', identity.issuer).where('subject', '=', identity.subject).executeTakeFirst();
        const principalId = known?.principal_id ?? newPrincipalId;
        if (known) {
          await tx.updateTable('principals').set({ attributes, updated_at: t }).where('id', '=', principalId).where('attributes', '!=', attributes).execute();
        } else {
          await tx.insertInto('principals').values({ id: principalId, kind: 'service', display_name: displayName, attributes, created_at: t, updated_at: t }).execute();
          await tx.insertInto('oidc_identities').values({ issuer: identity.issuer, subject: identity.subject, principal_id: principalId, created_at: t }).execute();
        }
        for (const ruleId of ruleIds) {
          await tx.insertInto('oidc_grants').values({ principal_id: principalId, rule_id: ruleId, created_at: t }).onConflict((oc) => oc.columns(['principal_id', 'rule_id']).doNothing()).execute();
        }
        for (const roleId of roleIds) {
          await tx.insertInto('principal_roles').values({ principal_id: principalId, role_id: roleId, created_at: t }).onConflict((oc) => oc.columns(['principal_id', 'role_id']).doNothing()).execute();
        }
        const row = await tx.selectFrom('principals').selectAll().where('id', '=', principalId).executeTakeFirstOrThrow();
        return { principal: (await withRoles(tx, [row]))[0]!, created: !known };
      });
    },

    async listOidcGrantees(ruleId) {
      const rows = await db
        .selectFrom('oidc_grants')
        .innerJoin('principals', 'principals.id', 'oidc_grants.principal_id')
        .innerJoin('oidc_identities', 'oidc_identities.principal_id', 'principals.id')
        .selectAll('principals')
        .select(['oidc_identities.issuer', 'oidc_identities.subject'])
        .where('oidc_grants.rule_id', '=', ruleId)
        .orderBy('principals.created_at')
        .orderBy('principals.id')
        .execute();
      if (rows.length === 0) return [];
      const principals = await withRoles(db, rows);
      const grants = await db
        .selectFrom('oidc_grants')
        .select(['principal_id', 'rule_id'])
        .where(
          'principal_id',
          'in',
          rows.map((r) => r.id),
        )
        .orderBy('rule_id')
        .execute();
      return rows.map((r, i) => ({
        principal: principals[i]!,
        identity: { issuer: r.issuer, subject: r.subject },
        ruleIds: grants.filter((g) => g.principal_id === r.id).map((g) => g.rule_id),
      }));
    },

    revokeOidcGrant({ principalId, ruleId, roleIds, guardRoleId }) {
      return a.transaction(async (tx) => {
        if ((await removeRoles(tx, { principalId, roleIds, guardRoleId })) === 'last_holder') return 'last_holder';
        await tx.deleteFrom('oidc_grants').where('principal_id', '=', principalId).where('rule_id', '=', ruleId).execute();
        return 'removed';
      });
    },
  };
}
