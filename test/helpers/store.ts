import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { hashSecret, tokenParts } from '../../src/auth/tokens.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { openPostgres } from '../../src/store/postgres/postgres-adapter.ts';
import type { SqlAdapter } from '../../src/store/sql/adapter.ts';
import type { Database } from '../../src/store/sql/schema.ts';
import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openSqlite } from '../../src/store/sqlite/sqlite-adapter.ts';
import { newToken, TEST_STORE, testDatabaseUrl } from './server.ts';

/** The database of a data dir, in the store the tests run against (see TEST_STORE). */
const openAdapter = async (dataDir: string): Promise<SqlAdapter> =>
  TEST_STORE === 'postgres' ? openPostgres({ url: await testDatabaseUrl(dataDir) }) : openSqlite(join(dataDir, 'metadata.sqlite'));

/** A metadata store on a data dir's database, for tests that drive services directly. */
export const openTestStore = async (dataDir: string): Promise<MetadataStore> => createSqlMetadataStore(await openAdapter(dataDir));

/** Opens the metadata store of a (running) server's data dir; SQLite in WAL mode allows it. */
export async function withStore<T>(dataDir: string, fn: (store: MetadataStore) => Promise<T>): Promise<T> {
  const store = await openTestStore(dataDir);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Raw access to the tables of a data dir's database, to check what is stored or to age rows. */
export async function withDatabase<T>(dataDir: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const adapter = await openAdapter(dataDir);
  try {
    return await fn(adapter.db);
  } finally {
    await adapter.close();
  }
}

/** Every row of every table, as one JSON text: what someone with a copy of the database sees. */
export const dumpDatabase = (dataDir: string): Promise<string> =>
  withDatabase(dataDir, async (db) => {
    const tables = (await db.introspection.getTables()).map((t) => t.name as keyof Database);
    const rows = await Promise.all(tables.map((t) => db.selectFrom(t).selectAll().execute()));
    return JSON.stringify(rows);
  });

/**
 * Creates a principal with the given roles and an API token for it, straight in the store
 * (the management API is a later issue). Returns the plaintext token.
 */
export async function seedPrincipal(dataDir: string, opts: { roles: string[]; expiresInMs?: number; revoked?: boolean }): Promise<string> {
  const plaintext = newToken();
  const { id, secret } = tokenParts(plaintext);
  const now = new Date();
  await withStore(dataDir, async (store) => {
    const principalId = `p-${id.slice(0, 8)}`;
    await store.insertPrincipal({ id: principalId, kind: 'service', displayName: 'test principal', attributes: {}, now });
    for (const roleId of opts.roles) await store.grantRole({ principalId, roleId, now });
    await store.insertApiToken({
      id,
      principalId,
      name: 'test',
      secretHash: hashSecret(secret),
      expiresAt: new Date(now.getTime() + (opts.expiresInMs ?? 3_600_000)),
      revokedAt: opts.revoked ? now : undefined,
      createdAt: now,
    });
  });
  return plaintext;
}
