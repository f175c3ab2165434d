import type { Kysely } from 'kysely';
import type { Digest } from '../../domain/digest.ts';
import type { RegistryRepository } from '../registry-repository.ts';
import type { SqlAdapter } from './adapter.ts';
import { compact, date, num, opt } from './row-values.ts';
import type { Database, OciManifestsTable } from './schema.ts';

type Db = Kysely<Database>;

const ensureRepository = (tx: Db, name: string, now: Date) =>
  tx.insertInto('oci_repositories').values({ name, created_at: now.getTime() }).onConflict((oc) => oc.column('name').doNothing()).execute();

const manifestFromRow = (r: OciManifestsTable) =>
  compact({
    repository: r.repository,
    digest: r.digest as Digest,
    mediaType: r.media_type,
    size: num(r.size),
    artifactType: opt(r.artifact_type),
    subject: opt(r.subject) as Digest | undefined,
    annotations: r.annotations === null ? undefined : (JSON.parse(r.annotations) as Record<string, string>),
    createdAt: date(r.created_at),
  });

/** The registry's metadata over any kysely dialect. */
export function sqlRegistry(a: SqlAdapter): RegistryRepository {
  const { db } = a;
  return {
    async listRepositories({ after, limit }) {
      const rows = await db.selectFrom('oci_repositories').select('name').$if(after !== undefined, (q) => q.where('name', '>', after!)).orderBy('name').limit(limit).execute();
      return rows.map((r) => r.name);
    },

    async repositoryExists(name) {
      return (await db.selectFrom('oci_repositories').select('name').where('name', '=', name).executeTakeFirst()) !== undefined;
    },

    linkBlob({ repository, digest, now }) {
      return a.transaction(async (tx) => {
        await ensureRepository(tx, repository, now);
        await tx.insertInto('oci_blob_links').values({ repository, digest, created_at: now.getTime() }).onConflict((oc) => oc.columns(['repository', 'digest']).doNothing()).execute();
      });
    },

    async unlinkBlob({ repository, digest }) {
      const r = await db.deleteFrom('oci_blob_links').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },

    async linkedBlobs(repository, digests) {
      if (digests.length === 0) return new Set();
      const rows = await db.selectFrom('oci_blob_links').select('digest').where('repository', '=', repository).where('digest', 'in', digests).execute();
      return new Set(rows.map((r) => r.digest as Digest));
    },

    putManifest({ manifest: m, tag, now }) {
      return a.transaction(async (tx) => {
        await ensureRepository(tx, m.repository, now);
        await tx
          .insertInto('oci_manifests')
          .values({
            repository: m.repository,
            digest: m.digest,
            media_type: m.mediaType,
            size: m.size,
            artifact_type: m.artifactType ?? null,
            subject: m.subject ?? null,
            annotations: m.annotations ? JSON.stringify(m.annotations) : null,
            created_at: now.getTime(),
          })
          .onConflict((oc) => oc.columns(['repository', 'digest']).doNothing())
          .execute();
        if (tag !== undefined) {
          const values = { digest: m.digest, updated_at: now.getTime() };
          await tx
            .insertInto('oci_tags')
            .values({ repository: m.repository, tag, ...values })
            .onConflict((oc) => oc.columns(['repository', 'tag']).doUpdateSet(values))
            .execute();
        }
      });
    },

    async getManifest(repository, digest) {
      const row = await db.selectFrom('oci_manifests').selectAll().where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
      return row && manifestFromRow(row);
    },

    async heldManifests(repository, digests) {
      if (digests.length === 0) return new Set();
      const rows = await db.selectFrom('oci_manifests').select('digest').where('repository', '=', repository).where('digest', 'in', digests).execute();
      return new Set(rows.map((r) => r.digest as Digest));
    },

    async resolveTag(repository, tag) {
      const row = await db.selectFrom('oci_tags').select('digest').where('repository', '=', repository).where('tag', '=', tag).executeTakeFirst();
      return row?.digest as Digest | undefined;
    },

    async listTags({ repository, after, limit }) {
      const rows = await db
        .selectFrom('oci_tags')
        .select('tag')
        .where('repository', '=', repository)
        .$if(after !== undefined, (q) => q.where('tag', '>', after!))
        .orderBy('tag')
        .limit(limit)
        .execute();
      return rows.map((r) => r.tag);
    },

    deleteManifest({ repository, digest }) {
      return a.transaction(async (tx) => {
        const r = await tx.deleteFrom('oci_manifests').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
        await tx.deleteFrom('oci_tags').where('repository', '=', repository).where('digest', '=', digest).execute();
        return Number(r.numDeletedRows) > 0;
      });
    },

    async deleteTag({ repository, tag }) {
      const r = await db.deleteFrom('oci_tags').where('repository', '=', repository).where('tag', '=', tag).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },

    async listReferrers({ repository, subject }) {
      const rows = await db.selectFrom('oci_manifests').selectAll().where('repository', '=', repository).where('subject', '=', subject).orderBy('created_at').orderBy('digest').execute();
      return rows.map(manifestFromRow);
    },

    async serverSecret(name, create, now) {
      await db.insertInto('server_secrets').values({ name, value: create(), created_at: now.getTime() }).onConflict((oc) => oc.column('name').doNothing()).execute();
      return (await db.selectFrom('server_secrets').select('value').where('name', '=', name).executeTakeFirstOrThrow()).value;
    },
  };
}
