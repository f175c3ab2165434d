import type { Kysely } from 'kysely';

/** Optional fixed part size of an upload session (parts written in place). Never edit once landed. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('uploads').addColumn('part_size', 'bigint').execute();
}
