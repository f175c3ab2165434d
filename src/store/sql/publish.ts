import type { Kysely } from 'kysely';
import { DomainError } from '../../domain/errors.ts';
import { PUBLISH_STEPS } from '../../domain/publish.ts';
import type { PublishDriver, PublishRepository } from '../catalog-repository.ts';
import type { SqlAdapter } from './adapter.ts';
import { bumpCatalogRevision } from './feed.ts';
import { incusFromRow, publishJobFromRow, stepFromRow } from './catalog-rows.ts';
import { jobToRow } from './rows.ts';
import type { Database } from './schema.ts';

type Db = Kysely<Database>;

const jobIdOfVersion = async (db: Db, versionId: string) =>
  (await db.selectFrom('publish_jobs').select('id').where('version_id', '=', versionId).executeTakeFirstOrThrow()).id;

/**
 * Whether `driver` still drives the publish job: its durable job is the one the publish job
 * names, running under the caller's lease. Read inside the writing transaction (PostgreSQL
 * also locks the durable job's row), so the check and the write are one.
 */
async function drives(a: SqlAdapter, tx: Db, jobId: string, driver: PublishDriver): Promise<boolean> {
  const row = await tx
    .selectFrom('publish_jobs as p')
    .innerJoin('jobs as j', 'j.id', 'p.driver_job_id')
    .select('p.id')
    .where('p.id', '=', jobId)
    .where('p.driver_job_id', '=', driver.jobId)
    .where('j.lease_owner', '=', driver.owner)
    .where('j.state', '=', 'running')
    .$if(a.dialect === 'postgres', (q) => q.forUpdate('j'))
    .executeTakeFirst();
  return row !== undefined;
}

/** Publish jobs and their steps, and the Incus index, over any kysely dialect. */
export function sqlPublish(a: SqlAdapter): PublishRepository {
  const { db } = a;
  return {
    startPublish({ versionId, jobId, stepIds, queue, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        // The conditional move comes first: it takes the version's row, so no artifact can be
        // removed between counting them and publishing (the rollback undoes it for an empty draft).
        const moved = await tx.updateTable('image_versions').set({ state: 'publishing', updated_at: t }).where('id', '=', versionId).where('state', '=', 'draft').executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) {
          const exists = await tx.selectFrom('image_versions').select('id').where('id', '=', versionId).executeTakeFirst();
          if (!exists) throw new DomainError('not_found', 'version_not_found', `version ${versionId} does not exist`);
          return { jobId: await jobIdOfVersion(tx, versionId), created: false };
        }
        const artifacts = await tx.selectFrom('artifacts').select('id').where('version_id', '=', versionId).limit(1).execute();
        if (artifacts.length === 0) {
          const v = await tx.selectFrom('image_versions').select('version').where('id', '=', versionId).executeTakeFirstOrThrow();
          throw new DomainError('precondition_failed', 'version_empty', `version ${v.version} has no artifact; add at least one before publishing`);
        }
        await tx
          .insertInto('publish_jobs')
          .values({ id: jobId, version_id: versionId, state: 'queued', driver_job_id: queue.id, failed_step: null, reason: null, started_at: null, finished_at: null, created_at: t, updated_at: t })
          .execute();
        await tx
          .insertInto('publish_steps')
          .values(
            PUBLISH_STEPS.map((name, sequence) => ({
              id: stepIds[name],
              job_id: jobId,
              name,
              state: 'queued',
              sequence,
              attempt_count: 0,
              failure_message: null,
              started_at: null,
              finished_at: null,
              created_at: t,
              updated_at: t,
            })),
          )
          .execute();
        await tx.insertInto('jobs').values(jobToRow(queue, now)).execute();
        return { jobId, created: true };
      });
    },

    async getPublishJob(id) {
      const row = await db
        .selectFrom('publish_jobs')
        .innerJoin('image_versions', 'image_versions.id', 'publish_jobs.version_id')
        .innerJoin('images', 'images.id', 'image_versions.image_id')
        .selectAll('publish_jobs')
        .select(['images.name as image_name', 'image_versions.version'])
        .where('publish_jobs.id', '=', id)
        .executeTakeFirst();
      if (!row) return undefined;
      const steps = await db.selectFrom('publish_steps').selectAll().where('job_id', '=', id).orderBy('sequence').execute();
      return publishJobFromRow(row, steps.map(stepFromRow));
    },

    startStep({ jobId, step, driver, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        if (!(await drives(a, tx, jobId, driver))) return false;
        await tx
          .updateTable('publish_jobs')
          .set((eb) => ({ state: 'running', started_at: eb.fn.coalesce('started_at', eb.val(t)), updated_at: t }))
          .where('id', '=', jobId)
          .execute();
        await tx
          .updateTable('publish_steps')
          .set((eb) => ({ state: 'running', attempt_count: eb('attempt_count', '+', 1), started_at: t, finished_at: null, failure_message: null, updated_at: t }))
          .where('job_id', '=', jobId)
          .where('name', '=', step)
          .execute();
        return true;
      });
    },

    finishStep({ jobId, step, outcome, driver, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        if (!(await drives(a, tx, jobId, driver))) return false;
        await tx.updateTable('publish_steps').set({ state: outcome, finished_at: t, updated_at: t }).where('job_id', '=', jobId).where('name', '=', step).execute();
        return true;
      });
    },

    putIncusIndex({ entries, driver, jobId, now }) {
      return a.transaction(async (tx) => {
        if (!(await drives(a, tx, jobId, driver))) return false;
        if (entries.length === 0) return true;
        await tx.deleteFrom('incus_index').where('artifact_id', 'in', entries.map((e) => e.artifactId)).execute();
        await tx
          .insertInto('incus_index')
          .values(
            entries.map((e) => ({
              artifact_id: e.artifactId,
              combined_sha256: e.combinedSha256,
              architecture: e.architecture,
              creation_date: e.creationDate,
              properties: JSON.stringify(e.properties),
              created_at: now.getTime(),
            })),
          )
          .execute();
        return true;
      });
    },

    failStep({ jobId, step, reason, driver, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        if (!(await drives(a, tx, jobId, driver))) return false;
        await tx.updateTable('publish_steps').set({ state: 'failed', failure_message: reason, finished_at: t, updated_at: t }).where('job_id', '=', jobId).where('name', '=', step).execute();
        await tx.updateTable('publish_jobs').set({ state: 'failed', failed_step: step, reason, finished_at: t, updated_at: t }).where('id', '=', jobId).execute();
        return true;
      });
    },

    finalizePublish({ jobId, driver, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        if (!(await drives(a, tx, jobId, driver))) return false;
        const job = await tx.selectFrom('publish_jobs').select('version_id').where('id', '=', jobId).executeTakeFirstOrThrow();
        const v = await tx.selectFrom('image_versions').select('image_id').where('id', '=', job.version_id).executeTakeFirstOrThrow();
        await tx
          .updateTable('image_versions')
          .set((eb) => ({ state: 'published', published_at: eb.fn.coalesce('published_at', eb.val(t)), updated_at: t }))
          .where('id', '=', job.version_id)
          .where('state', 'in', ['publishing', 'published'])
          .execute();
        await tx.updateTable('images').set({ updated_at: t }).where('id', '=', v.image_id).execute();
        await tx.updateTable('publish_steps').set({ state: 'succeeded', finished_at: t, updated_at: t }).where('job_id', '=', jobId).where('name', '=', 'finalize_publish').execute();
        await tx.updateTable('publish_jobs').set({ state: 'succeeded', failed_step: null, reason: null, finished_at: t, updated_at: t }).where('id', '=', jobId).execute();
        await bumpCatalogRevision(tx, now);
        return true;
      });
    },

    retryPublishJob({ jobId, queue, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        const r = await tx
          .updateTable('publish_jobs')
          .set({ state: 'queued', driver_job_id: queue.id, failed_step: null, reason: null, finished_at: null, updated_at: t })
          .where('id', '=', jobId)
          .where('state', '=', 'failed')
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return false;
        await tx.updateTable('publish_steps').set({ state: 'queued', finished_at: null, updated_at: t }).where('job_id', '=', jobId).where('state', '=', 'failed').execute();
        await tx.insertInto('jobs').values(jobToRow(queue, now)).execute();
        return true;
      });
    },

    async getIncusIndex(artifactIds) {
      if (artifactIds.length === 0) return [];
      const rows = await db.selectFrom('incus_index').selectAll().where('artifact_id', 'in', artifactIds).execute();
      return rows.map(incusFromRow);
    },
  };
}
