import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * Part writes and where their bytes are. Never edit once landed.
 * - `upload_part_writes`: every part write in flight, with a lease, so that a commit on any
 *   instance can wait until no write can touch the bytes it verifies.
 * - `upload_parts.placed_offset`: the part's bytes are in the upload's assembly at that offset
 *   (they were keyed 'placed' before; other keys now carry the part number the file name had).
 * - `uploads.slot_size`: the size of every part but the last, declared or learned from part 1.
 * - `uploads.expected_digest`/`expected_size` may be null: a session that learns them at commit.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.schema
    .createTable('upload_part_writes')
    .addColumn('write_id', 'text', (c) => c.primaryKey())
    .addColumn('upload_id', 'text', (c) => c.notNull().references('uploads.id').onDelete('cascade'))
    .addColumn('part_number', 'integer', (c) => c.notNull())
    .addColumn('in_place', 'integer', (c) => c.notNull())
    .addColumn('lease_expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('upload_part_writes_by_upload').on('upload_part_writes').columns(['upload_id', 'part_number']).execute();

  await db.schema.alterTable('uploads').addColumn('slot_size', 'bigint').execute();
  await sql`update uploads set slot_size = part_size where part_size is not null`.execute(db);
  await db.schema.alterTable('upload_parts').addColumn('placed_offset', 'bigint').execute();
  await sql`update upload_parts set placed_offset = (part_number - 1) * (select u.part_size from uploads u where u.id = upload_parts.upload_id), storage_key = 'assembly' where storage_key = 'placed'`.execute(db);
  const padded = postgres ? sql`lpad(part_number::text, 5, '0')` : sql`printf('%05d', part_number)`;
  await sql`update upload_parts set storage_key = ${padded} || '-' || storage_key where storage_key <> 'assembly'`.execute(db);

  if (postgres) {
    await sql`alter table uploads alter column expected_digest drop not null, alter column expected_size drop not null`.execute(db);
    return;
  }
  // SQLite cannot drop a NOT NULL constraint: move the values into new nullable columns.
  await db.schema.dropIndex('uploads_by_digest').execute();
  for (const [column, type] of [['expected_digest', 'text'], ['expected_size', 'bigint']] as const) {
    await db.schema.alterTable('uploads').addColumn(`${column}_new`, type).execute();
    await sql`update uploads set ${sql.ref(`${column}_new`)} = ${sql.ref(column)}`.execute(db);
    await db.schema.alterTable('uploads').dropColumn(column).execute();
    await db.schema.alterTable('uploads').renameColumn(`${column}_new`, column).execute();
  }
  await db.schema.createIndex('uploads_by_digest').on('uploads').columns(['expected_digest', 'state']).execute();
}
