import type { Kysely } from 'kysely';
import type { AuthRepository } from '../metadata-store.ts';
import type { SqlAdapter } from './adapter.ts';
import { principalFromRow, tokenFromRow, tokenToRow } from './rows.ts';
import type { Database, PrincipalsTable } from './schema.ts';

type Db = Kysely<Database>;

async function withRoles(db: Db, rows: PrincipalsTable[]) {
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

/** Principals, role assignments and API tokens. */
export function sqlAuth(a: SqlAdapter): AuthRepository {
  const { db } = a;
  return {
    async getPrincipal(id) {
      const row = await db.selectFrom('principals').selectAll().where('id', '=', id).executeTakeFirst();
      return row && (await withRoles(db, [row]))[0];
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

    async insertApiToken(token) {
      await db.insertInto('api_tokens').values(tokenToRow(token)).execute();
    },

    async getApiToken(id) {
      const row = await db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      return row && tokenFromRow(row);
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
