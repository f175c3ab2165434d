import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Cas } from '../blobs/cas.ts';
import { TERMINAL_STATES, type UploadPart } from '../domain/upload.ts';
import type { Clock } from '../lib/clock.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { PartWrites } from './part-writes.ts';

export interface PartWriteDeps {
  store: Pick<MetadataStore, 'getUpload' | 'endPartWrite' | 'putUploadPart'>;
  blobs: Pick<Cas, 'writePart' | 'deletePart' | 'discardUpload'>;
  writes: PartWrites;
  clock: Clock;
  log: Logger;
}

/**
 * The part write both upload protocols share, once it is registered as `writeId`: streams the
 * bytes (in place at `offset`, or apart), records the part, and on every failure ends the
 * write and drops the bytes of its own. Returns the recorded part.
 */
export async function writeRegisteredPart(
  deps: PartWriteDeps,
  input: { uploadId: string; partNumber: number; writeId: string; offset?: number; body: Readable; maxBytes: number; exactSize?: number; signal: AbortSignal },
): Promise<UploadPart> {
  const { store, blobs, writes, clock, log } = deps;
  const { uploadId, writeId } = input;
  let written: UploadPart;
  try {
    const stored = await writes.run({ uploadId, writeId, signal: input.signal }, (signal) =>
      blobs.writePart({ uploadId, offset: input.offset, body: input.body, maxBytes: input.maxBytes, exactSize: input.exactSize, signal }),
    );
    written = { number: input.partNumber, size: stored.size, etag: stored.crc32, key: stored.key, offset: stored.offset };
  } catch (e) {
    await store.endPartWrite(writeId).catch((err: unknown) => log.warn({ err, uploadId }, 'part write not ended; its lease lapses'));
    throw e;
  }
  let replaced: UploadPart | undefined;
  try {
    ({ replaced } = await store.putUploadPart({ uploadId, part: written, writeId, now: clock.now() }));
  } catch (e) {
    // The session ended (abort, expiry, complete) while the bytes streamed in: drop them, and
    // the whole area if the session no longer keeps parts (the write may have recreated it).
    await store.endPartWrite(writeId).catch(() => {});
    const current = await store.getUpload(uploadId);
    const drop = current && TERMINAL_STATES.includes(current.state) ? blobs.discardUpload(uploadId) : blobs.deletePart(uploadId, written);
    await drop.catch((err: unknown) => log.warn({ err, uploadId }, 'orphan part not deleted'));
    throw e;
  }
  // A driver keeps bytes in place with the assembly (deletePart leaves them); others are objects of their own.
  if (replaced && replaced.key !== written.key) {
    await blobs.deletePart(uploadId, replaced).catch((err: unknown) => log.warn({ err, uploadId }, 'replaced part not deleted'));
  }
  return written;
}
