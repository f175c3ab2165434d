import type { Logger } from 'pino';
import type { Cas } from '../blobs/cas.ts';
import type { Clock } from '../lib/clock.ts';
import type { MetadataStore } from '../store/metadata-store.ts';

/**
 * Removes a finished session's parts from the blob store, then records that they are gone.
 * A failure is logged and left for the sweeper, which retries every unpurged terminal session.
 */
export async function purgeUploadParts(
  deps: { store: Pick<MetadataStore, 'markUploadPurged'>; blobs: Pick<Cas, 'discardUpload'>; clock: Clock; log: Logger },
  uploadId: string,
): Promise<void> {
  try {
    await deps.blobs.discardUpload(uploadId);
    await deps.store.markUploadPurged({ uploadId, now: deps.clock.now() });
  } catch (err) {
    deps.log.warn({ err, uploadId }, 'upload parts not purged; the sweeper retries');
  }
}
