import type { Cas } from '../blobs/cas.ts';
import { isDomainError } from '../domain/errors.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { ServiceDeps } from './deps.ts';
import { purgeUploadParts } from './upload-parts.ts';

/** How often a commit looks whether the part writes it waits for have stopped. */
const FENCE_POLL_MS = 100;

export interface IngestDeps extends Pick<ServiceDeps, 'clock' | 'log'> {
  store: Pick<MetadataStore, 'getUpload' | 'listUploadParts' | 'countPartWrites' | 'transitionUpload' | 'markUploadReady' | 'markUploadPurged' | 'expireUploads' | 'listUnpurgedUploads'>;
  blobs: Pick<Cas, 'commit' | 'discardUpload'>;
  uploadTtlSeconds: number;
  failpoint: (name: string) => Promise<void>;
}

export type IngestService = ReturnType<typeof createIngestService>;

/** CAS ingest (completed → ingesting → ready | failed) and expiry of abandoned sessions. */
export function createIngestService(deps: IngestDeps) {
  const { store, blobs, clock, log } = deps;

  const fail = async (uploadId: string, reason: string) => {
    await store.transitionUpload({ uploadId, from: ['completed', 'ingesting'], to: 'failed', reason, now: clock.now() });
    await purgeUploadParts(deps, uploadId);
  };

  /**
   * Waits until no part write of the session can still touch its bytes: writes in this process
   * were cut off at complete, those of other instances stop at their next lease renewal, and the
   * lease of a writer that lost touch lapses. Only then are the bytes hashed.
   */
  async function fence(uploadId: string, signal: AbortSignal): Promise<void> {
    while ((await store.countPartWrites({ uploadId, now: clock.now() })) > 0) {
      await new Promise((resolve) => setTimeout(resolve, FENCE_POLL_MS));
      signal.throwIfAborted();
    }
  }

  return {
    /**
     * Verifies a completed session's parts and commits them into the CAS. Safe to re-run after
     * a crash at any point: an `ingesting` session is committed again, and the commit finds a
     * blob that was already in place without needing the parts.
     */
    async ingest(uploadId: string, signal: AbortSignal): Promise<void> {
      let session = await store.getUpload(uploadId);
      if (session?.state === 'completed') {
        session = await store.transitionUpload({ uploadId, from: ['completed'], to: 'ingesting', now: clock.now() });
      }
      if (session?.state !== 'ingesting') return;
      await deps.failpoint('ingest-started');
      try {
        await fence(uploadId, signal);
        const parts = await store.listUploadParts(uploadId);
        const expected = session.expectedDigest && { digest: session.expectedDigest, size: session.expectedSize };
        const blob = await blobs.commit({ uploadId, parts, expected, signal });
        log.info({ uploadId, digest: blob.digest, size: blob.size, outcome: blob.outcome }, 'upload committed');
        // The parts go before the session turns ready, so `ready` means nothing is left behind. A
        // crash in between is harmless: the re-run finds the blob in the CAS without the parts.
        await purgeUploadParts(deps, uploadId);
        await deps.failpoint('ingest-before-ready');
        await store.markUploadReady({ uploadId, blob, now: clock.now() });
      } catch (e) {
        // `invalid` is a verdict on the bytes (digest or size), and a full disk will not empty
        // itself by retrying: both fail the session with the reason. Anything else is retried.
        if (!isDomainError(e) || (e.kind !== 'invalid' && e.kind !== 'insufficient_storage')) throw e;
        log.warn({ uploadId, code: e.code, detail: e.detail }, 'upload failed verification');
        await fail(uploadId, e.detail);
      }
    },

    /** The ingest job ran out of attempts on infrastructure errors: the session fails with the last one. */
    async giveUp(uploadId: string, error: string): Promise<void> {
      await fail(uploadId, `ingest gave up after repeated storage errors: ${error}`);
    },

    /**
     * "Sessions that never complete expire": open sessions past `expires_at` become
     * `aborted`, and parts of every finished session are removed. Idempotent; several
     * instances may sweep at once.
     */
    async sweep(): Promise<{ expired: number; purged: number }> {
      const expired = await store.expireUploads({ now: clock.now(), reason: `expired: not completed within ${deps.uploadTtlSeconds} s`, limit: 500 });
      if (expired.length > 0) log.info({ count: expired.length }, 'upload sessions expired');
      const unpurged = await store.listUnpurgedUploads(500);
      for (const uploadId of unpurged) await purgeUploadParts(deps, uploadId);
      return { expired: expired.length, purged: unpurged.length };
    },
  };
}
