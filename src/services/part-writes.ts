import { DomainError } from '../domain/errors.ts';
import { PART_WRITE_LEASE_MS, PART_WRITE_SELF_FENCE_MS } from '../domain/upload.ts';
import type { Clock } from '../lib/clock.ts';
import type { MetadataStore } from '../store/metadata-store.ts';

export type PartWrites = ReturnType<typeof createPartWrites>;

/**
 * The part writes in flight in this process, and the lease that makes each visible to every
 * instance (see `UploadRepository.beginPartWrite`). A write stops, with the reason as its
 * signal's reason, when its session is completed or aborted here (`cutOff`), when renewing the
 * lease finds the session closed (a commit on another instance), or when the lease could not be
 * renewed for `PART_WRITE_SELF_FENCE_MS`: well before it lapses, so a commit that waits for the
 * lease never races a writer that lost touch with the database.
 */
export function createPartWrites(deps: { store: Pick<MetadataStore, 'renewPartWrite' | 'endPartWrite'>; clock: Clock; leaseMs?: number; selfFenceMs?: number }) {
  const leaseMs = deps.leaseMs ?? PART_WRITE_LEASE_MS;
  const selfFenceMs = deps.selfFenceMs ?? PART_WRITE_SELF_FENCE_MS;
  const local = new Map<string, Set<AbortController>>();

  const closed = (uploadId: string) => new DomainError('precondition_failed', 'upload_not_open', `upload ${uploadId} was completed or aborted while this part was being written`);

  return {
    leaseMs,

    /**
     * Runs `write` as the registered write `writeId` with a signal that fires when the client
     * goes away (`signal`) or the write must stop. The lease is renewed while it runs.
     */
    async run<T>(input: { uploadId: string; writeId: string; signal: AbortSignal }, write: (signal: AbortSignal) => Promise<T>): Promise<T> {
      const { uploadId, writeId } = input;
      const stop = new AbortController();
      const writers = local.get(uploadId) ?? new Set();
      local.set(uploadId, writers.add(stop));
      let renewedAt = performance.now();
      let renewing = false;
      // Checked every fifth of the lease: a write that lost touch stops within selfFenceMs plus
      // that, still well before its lease lapses for the instance waiting to commit.
      const heartbeat = setInterval(() => {
        if (performance.now() - renewedAt >= selfFenceMs) {
          stop.abort(new DomainError('unavailable', 'part_write_unconfirmed', 'the part write could not be confirmed with the metadata store in time; re-send the part'));
          return;
        }
        if (renewing) return;
        renewing = true;
        const attempt = performance.now();
        deps.store
          .renewPartWrite({ writeId, leaseMs, now: deps.clock.now() })
          .then((held) => {
            if (held) renewedAt = attempt;
            else stop.abort(closed(uploadId));
          })
          .catch(() => {}) // the check above ends the write if this keeps failing
          .finally(() => (renewing = false));
      }, leaseMs / 5);
      try {
        return await write(AbortSignal.any([input.signal, stop.signal]));
      } catch (e) {
        throw stop.signal.aborted ? stop.signal.reason : e;
      } finally {
        clearInterval(heartbeat);
        writers.delete(stop);
        if (writers.size === 0 && local.get(uploadId) === writers) local.delete(uploadId);
      }
    },

    /** Stops every write of the upload in this process (it was completed or aborted here). */
    cutOff(uploadId: string): void {
      for (const stop of local.get(uploadId) ?? []) stop.abort(closed(uploadId));
    },
  };
}
