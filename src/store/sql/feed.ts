import type { Kysely } from 'kysely';
import { INCUS_METADATA_ATTACHMENT, incusImageType, type ArtifactFormat } from '../../domain/catalog.ts';
import type { FeedEntry } from '../../domain/feed.ts';
import { freshReads } from '../../lib/fresh-read.ts';
import type { FeedRepository } from '../catalog-repository.ts';
import type { SqlAdapter } from './adapter.ts';
import type { Database } from './schema.ts';

/** Records, inside the caller's transaction, a change that the feed shows. */
export const bumpCatalogRevision = (tx: Kysely<Database>, now: Date) =>
  tx
    .updateTable('catalog_revision')
    .set((eb) => ({ revision: eb('revision', '+', 1), changed_at: now.getTime() }))
    .where('id', '=', 1)
    .execute();

/** The Incus feed's view of the catalog, in two queries, and its change token. */
export function sqlFeed(a: SqlAdapter): FeedRepository {
  const { db } = a;
  const revisionQuery = db.selectFrom('catalog_revision').select(['revision', 'changed_at']).where('id', '=', 1).compile();
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
          'a.format',
          'a.primary_blob_digest',
          'a.primary_blob_size',
          'm.blob_digest',
          'm.blob_size',
          'ix.combined_sha256',
          'ix.properties',
        ])
        .orderBy('a.created_at')
        .orderBy('a.id')
        .execute();
      const aliases = await db.selectFrom('aliases').innerJoin('images', 'images.id', 'aliases.image_id').select(['images.name as image', 'aliases.alias', 'aliases.version_id']).execute();
      return {
        // An indexed artifact is of a format Incus is served (incus_index picks only those);
        // a row of any other format cannot be shown, so it is left out rather than mistyped.
        entries: rows.flatMap((r): FeedEntry[] => {
          const type = incusImageType(r.format as ArtifactFormat);
          if (!type) return [];
          return [
            {
              image: r.image,
              version: r.version,
              versionId: r.version_id,
              publishedAt: new Date(Number(r.published_at)),
              operatingSystem: r.operating_system,
              architecture: r.architecture,
              variant: r.variant,
              type,
              root: { digest: r.primary_blob_digest, size: Number(r.primary_blob_size) },
              metadata: { digest: r.blob_digest, size: Number(r.blob_size) },
              combinedSha256: r.combined_sha256,
              properties: JSON.parse(r.properties) as Record<string, string>,
            },
          ];
        }),
        aliases: aliases.map((r) => ({ image: r.image, alias: r.alias, versionId: r.version_id })),
      };
    },

    // Read on every catalog and feed request: compiled once, and concurrent requests share one query.
    catalogRevision: freshReads(async () => {
      const [r] = (await db.executeQuery(revisionQuery)).rows;
      if (!r) throw new Error('the catalog_revision row is missing');
      return { revision: Number(r.revision), changedAt: new Date(Number(r.changed_at)) };
    }),
  };
}
