import type { Kysely } from 'kysely';
import type { Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';
import { assertAcceptsParts, assertFitsExpectedSize, OPEN_STATES, TERMINAL_STATES } from '../../domain/upload.ts';
import type { BlobIndex, UploadRepository } from '../metadata-store.ts';
import type { SqlAdapter } from './adapter.ts';
import { blobFromRow, jobToRow, PART_COLUMNS, partFromRow, uploadFromRow, uploadToRow } from './rows.ts';
import type { Database } from './schema.ts';

type Db = Kysely<Database>;

const selectUpload = (db: Db, id: string) => db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();

/** Upload sessions and the trusted-blob index, over any kysely dialect. */
export function sqlUploads(a: SqlAdapter): UploadRepository & BlobIndex {
  const { db } = a;
  return {
    async insertUpload(session) {
      await db.insertInto('uploads').values(uploadToRow(session)).execute();
    },

    async getUpload(id) {
      const row = await selectUpload(db, id);
      return row && uploadFromRow(row);
    },

    async findReadyUpload(digest, size) {
      const row = await db
        .selectFrom('uploads')
        .selectAll()
        .where('expected_digest', '=', digest)
        .where('expected_size', '=', size)
        .where('state', '=', 'ready')
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row && uploadFromRow(row);
    },

    async listUploadParts(uploadId) {
      const rows = await db
        .selectFrom('upload_parts')
        .select(PART_COLUMNS)
        .where('upload_id', '=', uploadId)
        .orderBy('part_number')
        .execute();
      return rows.map(partFromRow);
    },

    beginPartWrite({ uploadId, partNumber, writeId, place, leaseMs, now }) {
      return a.transaction(async (tx) => {
        const row = await selectUpload(tx, uploadId);
        if (!row) throw new DomainError('not_found', 'upload_not_found', `upload ${uploadId} does not exist`);
        assertAcceptsParts(uploadFromRow(row), now);
        let inPlace = false;
        if (place) {
          const slot = row.slot_size === null ? undefined : Number(row.slot_size);
          if (slot === undefined && place.learnsSlotSize) {
            await tx.updateTable('uploads').set({ slot_size: place.slotSize }).where('id', '=', uploadId).where('slot_size', 'is', null).execute();
          }
          const fits = slot === place.slotSize || (slot === undefined && place.learnsSlotSize);
          // In place only where no held part and no live write occupies the range: a re-send never
          // touches the bytes of the part it may replace, and two writes never share a range.
          const heldInPlace = await tx.selectFrom('upload_parts').select('part_number').where('upload_id', '=', uploadId).where('part_number', '=', partNumber).where('placed_offset', 'is not', null).executeTakeFirst();
          const writing = await tx
            .selectFrom('upload_part_writes')
            .select('write_id')
            .where('upload_id', '=', uploadId)
            .where('part_number', '=', partNumber)
            .where('in_place', '=', 1)
            .where('lease_expires_at', '>', now.getTime())
            .executeTakeFirst();
          inPlace = fits && !heldInPlace && !writing;
        }
        await tx
          .insertInto('upload_part_writes')
          .values({ write_id: writeId, upload_id: uploadId, part_number: partNumber, in_place: inPlace ? 1 : 0, lease_expires_at: now.getTime() + leaseMs, created_at: now.getTime() })
          .execute();
        return { inPlace };
      });
    },

    beginAppend({ uploadId, writeId, at, leaseMs, now }) {
      return a.transaction(async (tx) => {
        const row = await selectUpload(tx, uploadId);
        if (!row) throw new DomainError('not_found', 'upload_not_found', `upload ${uploadId} does not exist`);
        assertAcceptsParts(uploadFromRow(row), now);
        const held = (await tx.selectFrom('upload_parts').select(PART_COLUMNS).where('upload_id', '=', uploadId).execute()).map(partFromRow);
        const end = held.reduce((n, p) => n + p.size, 0);
        const writing = await tx.selectFrom('upload_part_writes').select('write_id').where('upload_id', '=', uploadId).where('lease_expires_at', '>', now.getTime()).executeTakeFirst();
        if (writing) throw new DomainError('range_not_satisfiable', 'chunk_in_flight', `another chunk of upload ${uploadId} is still being written; the session holds ${end} bytes`);
        if (at !== undefined && at !== end) throw new DomainError('range_not_satisfiable', 'chunk_out_of_order', `the chunk starts at ${at}, but upload ${uploadId} holds ${end} bytes: the next chunk starts there`);
        const partNumber = held.reduce((n, p) => Math.max(n, p.number), 0) + 1;
        await tx
          .insertInto('upload_part_writes')
          .values({ write_id: writeId, upload_id: uploadId, part_number: partNumber, in_place: 1, lease_expires_at: now.getTime() + leaseMs, created_at: now.getTime() })
          .execute();
        return { partNumber, offset: end };
      });
    },

    async renewPartWrite({ writeId, leaseMs, now }) {
      const r = await db
        .updateTable('upload_part_writes')
        .set({ lease_expires_at: now.getTime() + leaseMs })
        .where('write_id', '=', writeId)
        .where('upload_id', 'in', (eb) => eb.selectFrom('uploads').select('id').where('state', 'in', OPEN_STATES).where('expires_at', '>', now.getTime()))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async endPartWrite(writeId) {
      await db.deleteFrom('upload_part_writes').where('write_id', '=', writeId).execute();
    },

    async countPartWrites({ uploadId, now }) {
      const row = await db
        .selectFrom('upload_part_writes')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('upload_id', '=', uploadId)
        .where('lease_expires_at', '>', now.getTime())
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    putUploadPart({ uploadId, part, writeId, now }) {
      return a.transaction(async (tx) => {
        const row = await selectUpload(tx, uploadId);
        if (!row) throw new DomainError('not_found', 'upload_not_found', `upload ${uploadId} does not exist`);
        const session = uploadFromRow(row);
        assertAcceptsParts(session, now);
        const held = (await tx.selectFrom('upload_parts').select(PART_COLUMNS).where('upload_id', '=', uploadId).execute()).map(partFromRow);
        assertFitsExpectedSize(session, held, part);
        const previous = held.find((p) => p.number === part.number);
        const values = { size: part.size, etag: part.etag, storage_key: part.key, placed_offset: part.offset ?? null, updated_at: now.getTime() };
        await tx
          .insertInto('upload_parts')
          .values({ upload_id: uploadId, part_number: part.number, ...values })
          .onConflict((oc) => oc.columns(['upload_id', 'part_number']).doUpdateSet(values))
          .execute();
        await tx
          .updateTable('uploads')
          .set((eb) => ({ state: 'uploading', revision: eb('revision', '+', 1), updated_at: now.getTime() }))
          .where('id', '=', uploadId)
          .execute();
        if (writeId) await tx.deleteFrom('upload_part_writes').where('write_id', '=', writeId).execute();
        return { replaced: previous };
      });
    },

    completeUpload({ uploadId, revision, parts, job, expected, now }) {
      return a.transaction(async (tx) => {
        const moved = await tx
          .updateTable('uploads')
          .set({ state: 'completed', updated_at: now.getTime(), ...(expected && { expected_digest: expected.digest, expected_size: expected.size }) })
          .where('id', '=', uploadId)
          .where('state', '=', 'uploading')
          .where('revision', '=', revision)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) return false;
        const keep = parts.map((p) => p.number);
        await tx.deleteFrom('upload_parts').where('upload_id', '=', uploadId).where('part_number', 'not in', keep).execute();
        await tx.insertInto('jobs').values(jobToRow(job, now)).execute();
        return true;
      });
    },

    async transitionUpload({ uploadId, from, to, reason, now }) {
      const row = await db
        .updateTable('uploads')
        .set({ state: to, failure_reason: reason ?? null, updated_at: now.getTime() })
        .where('id', '=', uploadId)
        .where('state', 'in', from)
        .returningAll()
        .executeTakeFirst();
      return row && uploadFromRow(row);
    },

    markUploadReady({ uploadId, blob, now }) {
      return a.transaction(async (tx) => {
        await tx
          .insertInto('blobs')
          .values({ digest: blob.digest, size: blob.size, created_at: now.getTime() })
          .onConflict((oc) => oc.column('digest').doNothing())
          .execute();
        const recorded = await tx.selectFrom('blobs').select('size').where('digest', '=', blob.digest).executeTakeFirstOrThrow();
        if (Number(recorded.size) !== blob.size) {
          throw new DomainError('invalid', 'size_mismatch', `${blob.digest} is a trusted blob of ${Number(recorded.size)} bytes, not ${blob.size}`);
        }
        await tx
          .updateTable('uploads')
          .set({ state: 'ready', expected_digest: blob.digest, expected_size: blob.size, failure_reason: null, updated_at: now.getTime() })
          .where('id', '=', uploadId)
          .where('state', '=', 'ingesting')
          .execute();
      });
    },

    async hasLiveUpload({ digest, size, now }) {
      const row = await db
        .selectFrom('uploads')
        .select('id')
        .where('expected_digest', '=', digest)
        .where('expected_size', '=', size)
        .where((eb) => eb.or([eb('state', 'in', ['completed', 'ingesting']), eb.and([eb('state', 'in', OPEN_STATES), eb('expires_at', '>', now.getTime())])]))
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },

    async expireUploads({ now, reason, limit }) {
      const rows = await db
        .updateTable('uploads')
        .set({ state: 'aborted', failure_reason: reason, updated_at: now.getTime() })
        .where('state', 'in', OPEN_STATES)
        .where('expires_at', '<=', now.getTime())
        .where('id', 'in', (eb) =>
          eb.selectFrom('uploads').select('id').where('state', 'in', OPEN_STATES).where('expires_at', '<=', now.getTime()).limit(limit),
        )
        .returning('id')
        .execute();
      return rows.map((r) => r.id);
    },

    async listUnpurgedUploads(limit) {
      const rows = await db
        .selectFrom('uploads')
        .select('id')
        .where('state', 'in', TERMINAL_STATES)
        .where('parts_purged_at', 'is', null)
        .orderBy('updated_at')
        .limit(limit)
        .execute();
      return rows.map((r) => r.id);
    },

    async markUploadPurged({ uploadId, now }) {
      await a.transaction(async (tx) => {
        await tx.deleteFrom('upload_parts').where('upload_id', '=', uploadId).execute();
        await tx.updateTable('uploads').set({ parts_purged_at: now.getTime() }).where('id', '=', uploadId).execute();
      });
    },

    recordBlob({ digest, size, now }) {
      return a.transaction(async (tx) => {
        await tx.insertInto('blobs').values({ digest, size, created_at: now.getTime() }).onConflict((oc) => oc.column('digest').doNothing()).execute();
        const recorded = await tx.selectFrom('blobs').select('size').where('digest', '=', digest).executeTakeFirstOrThrow();
        if (Number(recorded.size) !== size) throw new DomainError('invalid', 'size_mismatch', `${digest} is a trusted blob of ${Number(recorded.size)} bytes, not ${size}`);
      });
    },

    async getBlob(digest: Digest) {
      const row = await db.selectFrom('blobs').selectAll().where('digest', '=', digest).executeTakeFirst();
      return row && blobFromRow(row);
    },
  };
}
