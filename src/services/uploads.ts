import type { BlobStore } from '../blobs/blob-store.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError } from '../domain/errors.ts';
import { assertAcceptsParts, heldWithout, isOpen, MAX_PART_NUMBER, partLayout, selectCompletedParts, TERMINAL_STATES, type RequestedPart, type UploadPart, type UploadSession } from '../domain/upload.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { ServiceDeps } from './deps.ts';
import { INGEST_JOB } from './ingest.ts';
import { purgeUploadParts } from './upload-parts.ts';

/** A session as clients see it: parts are listed while the server keeps them. */
export interface UploadView {
  session: UploadSession;
  parts?: UploadPart[];
}

export interface UploadServiceDeps extends Pick<ServiceDeps, 'clock' | 'log' | 'newId'> {
  store: Pick<
    MetadataStore,
    'getBlob' | 'insertUpload' | 'getUpload' | 'findReadyUpload' | 'listUploadParts' | 'putUploadPart' | 'completeUpload' | 'transitionUpload' | 'markUploadPurged'
  >;
  blobs: Pick<BlobStore, 'putPart' | 'deletePart' | 'discard'>;
  uploadTtlMs: number;
  maxPartBytes: number;
  /** Called after an ingest job was enqueued, to wake the local job runner. */
  onJobEnqueued: () => void;
}

export type UploadService = ReturnType<typeof createUploadService>;

/** Upload sessions: the only way bytes enter the server (contract `/v1/uploads*`). */
export function createUploadService(deps: UploadServiceDeps) {
  const { store, blobs, clock, log } = deps;

  async function load(uploadId: string): Promise<UploadSession> {
    const session = await store.getUpload(uploadId);
    if (!session) throw new DomainError('not_found', 'upload_not_found', `upload ${uploadId} does not exist`);
    return session;
  }

  async function view(session: UploadSession): Promise<UploadView> {
    const keepsParts = isOpen(session) || session.state === 'completed' || session.state === 'ingesting';
    return keepsParts ? { session, parts: await store.listUploadParts(session.id) } : { session };
  }

  return {
    /**
     * "If the expected digest already exists as a trusted CAS blob, the initial POST
     * /v1/uploads may short-circuit and return a session already in ready."
     */
    async begin(input: { expectedDigest: Digest; expectedSize: number; partSize?: number; mediaTypeHint?: string; filenameHint?: string }): Promise<{ view: UploadView; created: boolean }> {
      const now = clock.now();
      if (input.partSize !== undefined) {
        if (input.partSize > deps.maxPartBytes) {
          throw new DomainError('invalid', 'part_size_too_large', `part_size_bytes ${input.partSize} exceeds the largest accepted part (${deps.maxPartBytes} bytes)`);
        }
        if (Math.ceil(input.expectedSize / input.partSize) > MAX_PART_NUMBER) {
          throw new DomainError('invalid', 'too_many_parts', `${input.expectedSize} bytes in parts of ${input.partSize} need more than ${MAX_PART_NUMBER} parts`);
        }
      }
      const trusted = await store.getBlob(input.expectedDigest);
      if (trusted && trusted.size !== input.expectedSize) {
        throw new DomainError('precondition_failed', 'size_contradicts_blob', `${input.expectedDigest} is a trusted blob of ${trusted.size} bytes, not ${input.expectedSize}`);
      }
      if (trusted) {
        const existing = await store.findReadyUpload(input.expectedDigest, input.expectedSize);
        if (existing) return { view: { session: existing }, created: false };
      }
      const session: UploadSession = {
        id: deps.newId(),
        expectedDigest: input.expectedDigest,
        expectedSize: input.expectedSize,
        state: trusted ? 'ready' : 'created',
        mediaTypeHint: input.mediaTypeHint,
        filenameHint: input.filenameHint,
        partSize: input.partSize,
        revision: 0,
        expiresAt: new Date(now.getTime() + deps.uploadTtlMs),
        createdAt: now,
        updatedAt: now,
      };
      await store.insertUpload(session);
      if (trusted) await store.markUploadPurged({ uploadId: session.id, now });
      return { view: await view(session), created: !trusted };
    },

    async get(uploadId: string): Promise<UploadView> {
      return view(await load(uploadId));
    },

    /**
     * Streams one part to the blob store, then records it. Re-sending a part number replaces
     * it (last write wins until complete); the replaced bytes are deleted.
     */
    async putPart(input: { uploadId: string; partNumber: number; body: AsyncIterable<Uint8Array>; declaredLength?: number; signal: AbortSignal }): Promise<UploadPart> {
      const session = await load(input.uploadId);
      assertAcceptsParts(session, clock.now());
      const placement = partLayout(session, input.partNumber);
      if (placement && input.declaredLength !== undefined && input.declaredLength !== placement.size) {
        throw new DomainError('invalid', 'part_size_mismatch', `part ${input.partNumber} of upload ${session.id} must have exactly ${placement.size} bytes, not ${input.declaredLength}`);
      }
      // The session never holds more than it expects, so the part may fill only what is left.
      const room = session.expectedSize - heldWithout(await store.listUploadParts(session.id), input.partNumber);
      const limit = Math.min(deps.maxPartBytes, room);
      if (input.declaredLength !== undefined && input.declaredLength > limit) {
        throw new DomainError('payload_too_large', 'part_too_large', `the part has ${input.declaredLength} bytes; at most ${limit} more are accepted for upload ${session.id}`);
      }
      const stored = await blobs.putPart({ uploadId: session.id, partNumber: input.partNumber, body: input.body, maxBytes: limit, placement, signal: input.signal });
      const part: UploadPart = { number: input.partNumber, size: stored.size, etag: stored.crc32, key: stored.key };
      let replaced: UploadPart | undefined;
      try {
        ({ replaced } = await store.putUploadPart({ uploadId: session.id, part, now: clock.now() }));
      } catch (e) {
        // The session ended (abort, expiry, complete) while the bytes streamed in: drop them, and
        // the whole area if the session no longer keeps parts (the write may have recreated it).
        const current = await store.getUpload(session.id);
        const drop = current && TERMINAL_STATES.includes(current.state) ? blobs.discard(session.id) : blobs.deletePart(session.id, part);
        await drop.catch((err: unknown) => log.warn({ err, uploadId: session.id }, 'orphan part not deleted'));
        throw e;
      }
      if (replaced) {
        await blobs.deletePart(session.id, replaced).catch((err: unknown) => log.warn({ err, uploadId: session.id }, 'replaced part not deleted'));
      }
      return part;
    },

    /**
     * Verifies the listed parts against those held and hands the session to the ingest worker.
     * "200: Upload session completed or already terminally advanced."
     */
    async complete(input: { uploadId: string; parts: readonly RequestedPart[] }): Promise<UploadView> {
      for (let attempt = 0; attempt < 3; attempt++) {
        const session = await load(input.uploadId);
        if (session.state === 'aborted') {
          throw new DomainError('precondition_failed', 'upload_aborted', `upload ${session.id} was aborted${session.failureReason ? ` (${session.failureReason})` : ''}; begin a new upload`);
        }
        if (!isOpen(session)) return view(session);
        assertAcceptsParts(session, clock.now());
        const parts = selectCompletedParts(session, await store.listUploadParts(session.id), input.parts);
        const job = { id: deps.newId(), kind: INGEST_JOB, payload: { upload_id: session.id } };
        if (await store.completeUpload({ uploadId: session.id, revision: session.revision, parts, job, now: clock.now() })) {
          deps.onJobEnqueued();
          return view(await load(session.id));
        }
      }
      throw new DomainError('precondition_failed', 'upload_changed', `parts of upload ${input.uploadId} kept changing during complete; list the current parts and retry`);
    },

    /** "200: Upload session aborted or already aborted." */
    async abort(uploadId: string): Promise<UploadView> {
      const session = await load(uploadId);
      if (session.state === 'aborted') return view(session);
      const aborted = await store.transitionUpload({ uploadId, from: ['created', 'uploading'], to: 'aborted', reason: 'aborted by the client', now: clock.now() });
      if (!aborted) {
        const current = await load(uploadId);
        if (current.state === 'aborted') return view(current);
        throw new DomainError('precondition_failed', 'upload_not_abortable', `upload ${uploadId} is ${current.state}; only created or uploading sessions can be aborted`);
      }
      await purgeUploadParts(deps, uploadId);
      return view(aborted);
    },
  };
}
