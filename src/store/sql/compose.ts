import type { Compose, ImageState } from '../../domain/compose.ts';
import type { ComposeRepository } from '../compose-repository.ts';
import type { SqlAdapter } from './adapter.ts';
import { jobToRow } from './rows.ts';
import { compact, date, optDate } from './row-values.ts';
import type { ComposesTable } from './schema.ts';

const FINAL: readonly ImageState[] = ['success', 'failure'];
const json = (v: string | null) => (v === null ? undefined : (JSON.parse(v) as never));

const composeFromRow = (r: ComposesTable): Compose =>
  compact({
    id: r.id,
    principalId: r.principal_id,
    state: r.state as ImageState,
    request: JSON.parse(r.request) as unknown,
    target: JSON.parse(r.target) as Compose['target'],
    error: json(r.error),
    files: json(r.files),
    packages: json(r.packages),
    cancelRequested: Number(r.cancel_requested) === 1,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    finishedAt: optDate(r.finished_at),
  });

/** Composes and their logs over any kysely dialect. */
export function sqlCompose(a: SqlAdapter): ComposeRepository {
  const { db } = a;
  return {
    insertCompose({ compose: c, job, now }) {
      return a.transaction(async (tx) => {
        await tx
          .insertInto('composes')
          .values({
            id: c.id,
            principal_id: c.principalId,
            state: 'pending',
            request: JSON.stringify(c.request),
            target: JSON.stringify(c.target),
            error: null,
            files: null,
            packages: null,
            cancel_requested: 0,
            created_at: now.getTime(),
            updated_at: now.getTime(),
            finished_at: null,
          })
          .execute();
        await tx.insertInto('jobs').values(jobToRow(job, now)).execute();
      });
    },

    async getCompose(id) {
      const row = await db.selectFrom('composes').selectAll().where('id', '=', id).executeTakeFirst();
      return row && composeFromRow(row);
    },

    async moveCompose({ id, from, to, files, packages, error, now }) {
      const r = await db
        .updateTable('composes')
        .set({
          state: to,
          updated_at: now.getTime(),
          ...(files && { files: JSON.stringify(files) }),
          ...(packages && { packages: JSON.stringify(packages) }),
          ...(error && { error: JSON.stringify(error) }),
          ...(FINAL.includes(to) && { finished_at: now.getTime() }),
        })
        .where('id', '=', id)
        .where('state', 'in', from)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async requestComposeCancel({ id, now }) {
      const r = await db.updateTable('composes').set({ cancel_requested: 1, updated_at: now.getTime() }).where('id', '=', id).where('state', 'not in', FINAL).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    appendComposeLog({ id, lines }) {
      if (lines.length === 0) return Promise.resolve();
      return a.transaction(async (tx) => {
        const last = await tx.selectFrom('compose_logs').select((eb) => eb.fn.max('seq').as('seq')).where('compose_id', '=', id).executeTakeFirst();
        const start = Number(last?.seq ?? 0) + 1;
        await tx.insertInto('compose_logs').values(lines.map((line, i) => ({ compose_id: id, seq: start + i, line }))).execute();
      });
    },

    async readComposeLog({ id, after, limit }) {
      const rows = await db.selectFrom('compose_logs').select(['seq', 'line']).where('compose_id', '=', id).where('seq', '>', after).orderBy('seq').limit(limit).execute();
      return rows.map((r) => ({ seq: Number(r.seq), line: r.line }));
    },
  };
}
