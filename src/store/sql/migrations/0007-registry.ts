import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * The OCI registry at /v2 over the same CAS: repositories, the blobs each may serve (links),
 * manifests (their bytes are CAS blobs; the rows hold what listing, referrers and deletes
 * need), tags, and the secret that signs registry tokens on every instance alike. An upload
 * session of a push names its repository. Never edit once landed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('oci_repositories').addColumn('name', 'text', (c) => c.primaryKey()).addColumn('created_at', 'bigint', (c) => c.notNull()).execute();
  await db.schema
    .createTable('oci_blob_links')
    .addColumn('repository', 'text', (c) => c.notNull().references('oci_repositories.name').onDelete('cascade'))
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oci_blob_links_pk', ['repository', 'digest'])
    .execute();
  await db.schema
    .createTable('oci_manifests')
    .addColumn('repository', 'text', (c) => c.notNull().references('oci_repositories.name').onDelete('cascade'))
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('media_type', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('artifact_type', 'text')
    .addColumn('subject', 'text')
    .addColumn('annotations', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oci_manifests_pk', ['repository', 'digest'])
    .execute();
  await db.schema.createIndex('oci_manifests_by_subject').on('oci_manifests').columns(['repository', 'subject']).execute();
  await db.schema
    .createTable('oci_tags')
    .addColumn('repository', 'text', (c) => c.notNull().references('oci_repositories.name').onDelete('cascade'))
    .addColumn('tag', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('oci_tags_pk', ['repository', 'tag'])
    .execute();
  await db.schema.createTable('server_secrets').addColumn('name', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).addColumn('created_at', 'bigint', (c) => c.notNull()).execute();
  await db.schema.alterTable('uploads').addColumn('repository', 'text').execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    // tags/list and _catalog are in lexical (byte) order, as on SQLite, whatever the database's collation.
    for (const [table, column] of [
      ['oci_repositories', 'name'],
      ['oci_tags', 'tag'],
    ] as const) {
      await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} type text collate "C"`.execute(db);
    }
  }
}
