import { sql } from 'kysely';
import { INCUS_METADATA_ATTACHMENT } from '../../domain/catalog.ts';
import type { FeedRepository } from '../catalog-repository.ts';
import type { SqlAdapter } from './adapter.ts';

const num = (v: number | string | null) => (v === null ? null : Number(v));

/** The Incus feed's view of the catalog, in two queries, and its change token. */
export function sqlFeed(a: SqlAdapter): FeedRepository {
  const { db } = a;
  return {
    async feedSnapshot() {
      const rows = await db
        .selectFrom('incus_index as ix')
        .innerJoin('artifacts as a', 'a.id', 'ix.artifact_id')
        .innerJoin('image_versions as v', 'v.id', 'a.version_id')
        .innerJoin('images as i', 'i.id', 'v.image_id')
        .innerJoin('attachments as m', (j) => j.onRef('m.artifact_id', '=', 'a.id').on('m.name', '=', INCUS_METADATA_ATTACHMENT))
        .where('v.state', '=', 'published')
        .select([
          'i.name as image',
          'v.version',
          'v.id as version_id',
          'v.published_at',
          'a.operating_system',
          'a.architecture',
          'a.variant',
          'a.primary_blob_digest',
          'a.primary_blob_size',
          'm.blob_digest',
          'm.blob_size',
          'ix.combined_sha256',
          'ix.properties',
        ])
        .orderBy('a.created_at')
        .execute();
      const aliases = await db.selectFrom('aliases').innerJoin('images', 'images.id', 'aliases.image_id').select(['images.name as image', 'aliases.alias', 'aliases.version_id']).execute();
      return {
        entries: rows.map((r) => ({
          image: r.image,
          version: r.version,
          versionId: r.version_id,
          publishedAt: new Date(Number(r.published_at)),
          operatingSystem: r.operating_system,
          architecture: r.architecture,
          variant: r.variant,
          disk: { digest: r.primary_blob_digest, size: Number(r.primary_blob_size) },
          metadata: { digest: r.blob_digest, size: Number(r.blob_size) },
          combinedSha256: r.combined_sha256,
          properties: JSON.parse(r.properties) as Record<string, string>,
        })),
        aliases: aliases.map((r) => ({ image: r.image, alias: r.alias, versionId: r.version_id })),
      };
    },

    async feedRevision() {
      const { rows } = await sql<{ published: number | string; last_published: number | string | null; aliases: number | string; last_alias: number | string | null }>`
        select (select count(*) from image_versions where state = 'published') as published,
               (select max(published_at) from image_versions) as last_published,
               (select count(*) from aliases) as aliases,
               (select max(updated_at) from aliases) as last_alias`.execute(db);
      const r = rows[0]!;
      return [num(r.published), num(r.last_published), num(r.aliases), num(r.last_alias)].join(':');
    },
  };
}
