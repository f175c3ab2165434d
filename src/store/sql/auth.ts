import type { Kysely } from 'kysely';
import type { AuthRepository, RoleRemoval } from '../metadata-store.ts';
import type { SqlAdapter } from './adapter.ts';
import { principalFromRow, tokenFromRow, tokenToRow } from './rows.ts';
import type { Database, PrincipalsTable } from './schema.ts';

type Db = Kysely<Database>;

export async function withRoles(db: Db, rows: PrincipalsTable[]) {
  if (rows.length === 0) return [];
  const roles = await db
    .selectFrom('principal_roles')
    .select(['principal_id', 'role_id'])
    .where(
      'principal_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('role_id')
    .execute();
  return rows.map((r) =>
    principalFromRow(
      r,
      roles.filter((x) => x.principal_id === r.id).map((x) => x.role_id),
    ),
  );
}

/**
 * Removes roles from a principal inside a write transaction, unless one of them is
 * `guardRoleId` and the principal is its only holder.
 */
export async function removeRoles(tx: Db, input: { principalId: string; roleIds: readonly string[]; guardRoleId: string }): Promise<RoleRemoval> {
  const { principalId, roleIds, guardRoleId } = input;
  if (roleIds.length === 0) return 'not_held';
  if (roleIds.includes(guardRoleId)) {
    const holders = await tx.selectFrom('principal_roles').select('principal_id').where('role_id', '=', guardRoleId).limit(2).execute();
    if (holders.length === 1 && holders[0]!.principal_id === principalId) return 'last_holder';
  }
  const r = await tx.deleteFrom('principal_roles').where('principal_id', '=', principalId).where('role_id', 'in', roleIds).executeTakeFirst();
  return Number(r.numDeletedRows) > 0 ? 'removed' : 'not_held';
}

/** Principals, role assignments and API tokens. */
export function sqlAuth(a: SqlAdapter): AuthRepository {
  const { db } = a;
  return {
    async getPrincipal(id) {
      const row = await db.selectFrom('principals').selectAll().where('id', '=', id).executeTakeFirst();
      return row && (await withRoles(db, [row]))[0];
    },

    async listPrincipals() {
      return withRoles(db, await db.selectFrom('principals').selectAll().orderBy('created_at').orderBy('id').execute());
    },

    async listPrincipalsWithRole(roleId) {
      const rows = await db
        .selectFrom('principals')
        .selectAll('principals')
        .innerJoin('principal_roles', 'principal_roles.principal_id', 'principals.id')
        .where('principal_roles.role_id', '=', roleId)
        .orderBy('principals.created_at')
        .execute();
      return withRoles(db, rows);
    },

    async insertPrincipal({ id, kind, displayName, attributes, now }) {
      await db
        .insertInto('principals')
        .values({ id, kind, display_name: displayName, attributes: JSON.stringify(attributes), created_at: now.getTime(), updated_at: now.getTime() })
        .execute();
    },

    async grantRole({ principalId, roleId, now }) {
      await db
        .insertInto('principal_roles')
        .values({ principal_id: principalId, role_id: roleId, created_at: now.getTime() })
        .onConflict((oc) => oc.columns(['principal_id', 'role_id']).doNothing())
        .execute();
    },

    revokeRole({ principalId, roleId, guardRoleId }) {
      return a.transaction((tx) => removeRoles(tx, { principalId, roleIds: [roleId], guardRoleId }));
    },

    async insertApiToken(token) {
      await db.insertInto('api_tokens').values(tokenToRow(token)).execute();
    },

    async getApiToken(id) {
      const row = await db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      return row && tokenFromRow(row);
    },

    async listApiTokens(principalId) {
      const rows = await db.selectFrom('api_tokens').selectAll().where('principal_id', '=', principalId).orderBy('created_at').orderBy('id').execute();
      return rows.map(tokenFromRow);
    },

    async revokeApiToken({ id, now }) {
      await db.updateTable('api_tokens').set({ revoked_at: now.getTime() }).where('id', '=', id).where('revoked_at', 'is', null).execute();
      const row = await db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      return row && tokenFromRow(row);
    },

    async touchApiToken({ id, now, staleBefore }) {
      await db
        .updateTable('api_tokens')
        .set({ last_used_at: now.getTime() })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', staleBefore.getTime())]))
        .execute();
    },

    async renewExpiredApiToken({ id, secretHash, expiresAt, now }) {
      const r = await db
        .updateTable('api_tokens')
        .set({ expires_at: expiresAt.getTime() })
        .where('id', '=', id)
        .where('secret_hash', '=', secretHash)
        .where('revoked_at', 'is', null)
        .where('expires_at', '<=', now.getTime())
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    bootstrapPrincipal({ principal, roleIds, guardRoleId, token, now }) {
      return a.transaction(async (tx) => {
        const guard = await tx.selectFrom('principal_roles').select('principal_id').where('role_id', '=', guardRoleId).limit(1).executeTakeFirst();
        if (guard) return false;
        const t = now.getTime();
        await tx
          .insertInto('principals')
          .values({ id: principal.id, kind: principal.kind, display_name: principal.displayName, attributes: JSON.stringify(principal.attributes), created_at: t, updated_at: t })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        for (const roleId of roleIds) {
          await tx
            .insertInto('principal_roles')
            .values({ principal_id: principal.id, role_id: roleId, created_at: t })
            .onConflict((oc) => oc.columns(['principal_id', 'role_id']).doNothing())
            .execute();
        }
        await tx.insertInto('api_tokens').values(tokenToRow(token)).execute();
        return true;
      });
    },
  };
}
