import type { Kysely } from 'kysely';
import { assertDraft, type VersionState } from '../../domain/catalog.ts';
import { DomainError } from '../../domain/errors.ts';
import type { CatalogRepository } from '../catalog-repository.ts';
import type { SqlAdapter } from './adapter.ts';
import { bumpCatalogRevision } from './feed.ts';
import { aliasFromRow, artifactFromRow, artifactToRow, attachmentFromRow, attachmentToRow, imageFromRow, imageToRow, versionFromRow } from './catalog-rows.ts';
import type { Database } from './schema.ts';

type Db = Kysely<Database>;

/**
 * Touches the version row on condition that it is a draft, first thing in a transaction that
 * changes the version's content: the conditional update takes the row's write lock, so a
 * concurrent publish either happened before (and this fails) or waits until this commits.
 */
async function guardDraft(tx: Db, versionId: string, now: Date): Promise<void> {
  const r = await tx.updateTable('image_versions').set({ updated_at: now.getTime() }).where('id', '=', versionId).where('state', '=', 'draft').executeTakeFirst();
  if (Number(r.numUpdatedRows) === 1) return;
  const v = await tx.selectFrom('image_versions').select(['version', 'state']).where('id', '=', versionId).executeTakeFirst();
  if (!v) throw new DomainError('not_found', 'version_not_found', `version ${versionId} does not exist`);
  assertDraft({ version: v.version, state: v.state as VersionState });
}

const aliasRows = (db: Db) =>
  db.selectFrom('aliases').innerJoin('image_versions', 'image_versions.id', 'aliases.version_id').selectAll('aliases').select('image_versions.version');

/** Images, versions, artifacts, attachments and aliases, over any kysely dialect. */
export function sqlCatalog(a: SqlAdapter): CatalogRepository {
  const { db } = a;
  return {
    async insertImage(image) {
      await db.insertInto('images').values(imageToRow(image)).execute();
    },

    async getImage(name) {
      const row = await db.selectFrom('images').selectAll().where('name', '=', name).executeTakeFirst();
      return row && imageFromRow(row);
    },

    async listPublishedImages() {
      const rows = await db
        .selectFrom('images')
        .selectAll()
        .where((eb) => eb.exists(eb.selectFrom('image_versions').select('id').whereRef('image_versions.image_id', '=', 'images.id').where('state', '=', 'published')))
        .orderBy('name')
        .execute();
      return rows.map(imageFromRow);
    },

    async insertVersion(v) {
      await db
        .insertInto('image_versions')
        .values({ id: v.id, image_id: v.imageId, version: v.version, state: v.state, published_at: null, created_at: v.createdAt.getTime(), updated_at: v.updatedAt.getTime() })
        .execute();
    },

    async getVersion(imageId, version) {
      const row = await db.selectFrom('image_versions').selectAll().where('image_id', '=', imageId).where('version', '=', version).executeTakeFirst();
      return row && versionFromRow(row);
    },

    async getVersionById(id) {
      const row = await db.selectFrom('image_versions').selectAll().where('id', '=', id).executeTakeFirst();
      return row && versionFromRow(row);
    },

    async listPublishedVersions(imageId) {
      const rows = await db
        .selectFrom('image_versions')
        .selectAll()
        .where('image_id', '=', imageId)
        .where('state', '=', 'published')
        .orderBy('published_at')
        .orderBy('version')
        .execute();
      return rows.map(versionFromRow);
    },

    insertArtifact({ artifact, now }) {
      return a.transaction(async (tx) => {
        await guardDraft(tx, artifact.versionId, now);
        await tx.insertInto('artifacts').values(artifactToRow(artifact)).execute();
      });
    },

    deleteArtifact({ versionId, artifactId, now }) {
      return a.transaction(async (tx) => {
        await guardDraft(tx, versionId, now);
        const r = await tx.deleteFrom('artifacts').where('id', '=', artifactId).where('version_id', '=', versionId).executeTakeFirst();
        return Number(r.numDeletedRows) === 1;
      });
    },

    async listArtifacts(versionId) {
      const rows = await db.selectFrom('artifacts').selectAll().where('version_id', '=', versionId).orderBy('created_at').orderBy('id').execute();
      return rows.map(artifactFromRow);
    },

    async getArtifact(versionId, artifactId) {
      const row = await db.selectFrom('artifacts').selectAll().where('version_id', '=', versionId).where('id', '=', artifactId).executeTakeFirst();
      return row && artifactFromRow(row);
    },

    insertAttachment({ versionId, attachment, now }) {
      return a.transaction(async (tx) => {
        await guardDraft(tx, versionId, now);
        const artifact = await tx.selectFrom('artifacts').select('id').where('id', '=', attachment.artifactId).where('version_id', '=', versionId).executeTakeFirst();
        if (!artifact) throw new DomainError('not_found', 'artifact_not_found', `artifact ${attachment.artifactId} is not part of this version`);
        await tx.insertInto('attachments').values(attachmentToRow(attachment)).execute();
      });
    },

    deleteAttachment({ versionId, artifactId, attachmentId, now }) {
      return a.transaction(async (tx) => {
        await guardDraft(tx, versionId, now);
        const r = await tx
          .deleteFrom('attachments')
          .where('id', '=', attachmentId)
          .where('artifact_id', '=', artifactId)
          .where('artifact_id', 'in', (eb) => eb.selectFrom('artifacts').select('id').where('version_id', '=', versionId))
          .executeTakeFirst();
        return Number(r.numDeletedRows) === 1;
      });
    },

    async listAttachments(artifactIds) {
      if (artifactIds.length === 0) return [];
      const rows = await db.selectFrom('attachments').selectAll().where('artifact_id', 'in', artifactIds).orderBy('created_at').orderBy('id').execute();
      return rows.map(attachmentFromRow);
    },

    async getAttachment(artifactId, attachmentId) {
      const row = await db.selectFrom('attachments').selectAll().where('artifact_id', '=', artifactId).where('id', '=', attachmentId).executeTakeFirst();
      return row && attachmentFromRow(row);
    },

    putAlias({ id, imageId, alias, versionId, now }) {
      return a.transaction(async (tx) => {
        const v = await tx.selectFrom('image_versions').select(['version', 'state']).where('id', '=', versionId).where('image_id', '=', imageId).executeTakeFirst();
        if (!v) throw new DomainError('not_found', 'version_not_found', `version ${versionId} does not exist`);
        if (v.state !== 'published') {
          throw new DomainError('precondition_failed', 'version_not_published', `version ${v.version} is ${v.state}; aliases point at published versions only`);
        }
        const t = now.getTime();
        await tx
          .insertInto('aliases')
          .values({ id, image_id: imageId, alias, version_id: versionId, created_at: t, updated_at: t })
          .onConflict((oc) => oc.columns(['image_id', 'alias']).doUpdateSet({ version_id: versionId, updated_at: t }))
          .execute();
        await bumpCatalogRevision(tx, now);
        return aliasFromRow(await aliasRows(tx).where('aliases.image_id', '=', imageId).where('aliases.alias', '=', alias).executeTakeFirstOrThrow());
      });
    },

    async getAlias(imageId, alias) {
      const row = await aliasRows(db).where('aliases.image_id', '=', imageId).where('aliases.alias', '=', alias).executeTakeFirst();
      return row && aliasFromRow(row);
    },

    async listAliases(imageId) {
      const rows = await aliasRows(db).where('aliases.image_id', '=', imageId).orderBy('aliases.alias').execute();
      return rows.map(aliasFromRow);
    },

    deleteAlias(imageId, alias, now) {
      return a.transaction(async (tx) => {
        const r = await tx.deleteFrom('aliases').where('image_id', '=', imageId).where('alias', '=', alias).executeTakeFirst();
        if (Number(r.numDeletedRows) !== 1) return false;
        await bumpCatalogRevision(tx, now);
        return true;
      });
    },
  };
}
