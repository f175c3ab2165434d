import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * One counter, bumped in the same transaction as every change the Incus feed shows (a version
 * published, an alias created, moved or deleted), with the time of that change: every instance
 * of the server then agrees on when its cached feed is stale and on its Last-Modified.
 * On PostgreSQL, names, versions and aliases compare and sort byte-wise ("C"), as on SQLite,
 * whatever the database's default collation. Never edit once landed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('catalog_revision')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('revision', 'bigint', (c) => c.notNull())
    .addColumn('changed_at', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into catalog_revision (id, revision, changed_at) values (1, 0, 0)`.execute(db);
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    for (const [table, column] of [
      ['images', 'name'],
      ['image_versions', 'version'],
      ['aliases', 'alias'],
    ] as const) {
      await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} type text collate "C"`.execute(db);
    }
  }
}
