import type { ExpressionBuilder } from 'kysely';
import type { JobQueue } from '../metadata-store.ts';
import type { SqlAdapter } from './adapter.ts';
import { jobFromRow, jobToRow } from './rows.ts';
import type { Database } from './schema.ts';

/** Queued and due, or running under a lease that has lapsed. */
const runnableAt =
  (t: number) =>
  (eb: ExpressionBuilder<Database, 'jobs'>) =>
    eb.or([
      eb.and([eb('state', '=', 'queued'), eb('run_after', '<=', t)]),
      eb.and([eb('state', '=', 'running'), eb('lease_expires_at', '<', t)]),
    ]);

/**
 * Durable job queue. A claim picks the oldest runnable job and takes its lease in one
 * transaction; the UPDATE repeats the runnable condition, so of two claimers racing for the
 * same row only one succeeds (PostgreSQL additionally skips rows another claimer locked).
 */
export function sqlJobs(a: SqlAdapter): JobQueue {
  const { db } = a;
  return {
    async enqueueJob({ now, ...job }) {
      await db.insertInto('jobs').values(jobToRow(job, now)).execute();
    },

    async getJob(id) {
      const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
      return row && jobFromRow(row);
    },

    claimJob({ kinds, owner, leaseMs, now }) {
      const t = now.getTime();
      return a.transaction(async (tx) => {
        const runnable = tx
          .selectFrom('jobs')
          .select('id')
          .where('kind', 'in', kinds)
          .where(runnableAt(t))
          .orderBy('run_after')
          .limit(1)
          .$if(a.dialect === 'postgres', (q) => q.forUpdate().skipLocked());
        const candidate = await runnable.executeTakeFirst();
        if (!candidate) return undefined;
        const row = await tx
          .updateTable('jobs')
          .set((eb) => ({ state: 'running', attempts: eb('attempts', '+', 1), lease_owner: owner, lease_expires_at: t + leaseMs, updated_at: t }))
          .where('id', '=', candidate.id)
          .where(runnableAt(t))
          .returningAll()
          .executeTakeFirst();
        return row && jobFromRow(row);
      });
    },

    async renewJobLease({ id, owner, leaseMs, now }) {
      const r = await db
        .updateTable('jobs')
        .set({ lease_expires_at: now.getTime() + leaseMs, updated_at: now.getTime() })
        .where('id', '=', id)
        .where('state', '=', 'running')
        .where('lease_owner', '=', owner)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async finishJob(input) {
      const t = input.now.getTime();
      const common = { lease_owner: null, lease_expires_at: null, updated_at: t };
      const set =
        input.outcome === 'succeeded'
          ? { ...common, state: 'succeeded', last_error: null }
          : input.outcome === 'failed'
            ? { ...common, state: 'failed', last_error: input.error }
            : { ...common, state: 'queued', last_error: input.error, run_after: input.retryAt.getTime() };
      await db.updateTable('jobs').set(set).where('id', '=', input.id).where('state', '=', 'running').where('lease_owner', '=', input.owner).execute();
    },

    async listLeaseOwners() {
      const rows = await db.selectFrom('jobs').select('lease_owner').distinct().where('state', '=', 'running').where('lease_owner', 'is not', null).execute();
      return rows.map((r) => r.lease_owner).filter((o): o is string => o !== null);
    },

    async releaseLeases({ owner, now }) {
      const r = await db
        .updateTable('jobs')
        .set({ state: 'queued', lease_owner: null, lease_expires_at: null, run_after: now.getTime(), updated_at: now.getTime() })
        .where('state', '=', 'running')
        .where('lease_owner', '=', owner)
        .executeTakeFirst();
      return Number(r.numUpdatedRows);
    },
  };
}
