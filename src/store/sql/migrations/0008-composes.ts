import type { Kysely } from 'kysely';

/** Image builds (composes) and their build logs. Never edit once landed. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('composes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('principal_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('request', 'text', (c) => c.notNull())
    .addColumn('target', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('files', 'text')
    .addColumn('packages', 'text')
    .addColumn('cancel_requested', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema
    .createTable('compose_logs')
    .addColumn('compose_id', 'text', (c) => c.notNull().references('composes.id').onDelete('cascade'))
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('line', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('compose_logs_pk', ['compose_id', 'seq'])
    .execute();
}
