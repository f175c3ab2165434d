import type { Readable } from 'node:stream';
import type { Cas } from '../blobs/cas.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError } from '../domain/errors.ts';
import { INGEST_JOB, newJob } from '../domain/job.ts';
import { assertAcceptsParts, heldWithout, isOpen, MAX_PART_NUMBER, partLayout, placement, selectCompletedParts, type RequestedPart, type UploadPart, type UploadSession } from '../domain/upload.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { ServiceDeps } from './deps.ts';
import { writeRegisteredPart, type PartWriteDeps } from './part-write.ts';
import type { PartWrites } from './part-writes.ts';
import { purgeUploadParts } from './upload-parts.ts';

/** A session as clients see it: parts are listed while the server keeps them. */
export interface UploadView {
  session: UploadSession;
  parts?: UploadPart[];
}

export interface UploadServiceDeps extends Pick<ServiceDeps, 'clock' | 'log' | 'newId'> {
  store: PartWriteDeps['store'] &
    Pick<
    MetadataStore,
    | 'getBlob'
    | 'insertUpload'
    | 'getUpload'
    | 'findReadyUpload'
    | 'listUploadParts'
    | 'beginPartWrite'
    | 'endPartWrite'
    | 'putUploadPart'
    | 'completeUpload'
    | 'transitionUpload'
    | 'markUploadPurged'
  >;
  blobs: PartWriteDeps['blobs'] & Pick<Cas, 'assertRoomToCommit'>;
  writes: PartWrites;
  uploadTtlMs: number;
  maxPartBytes: number;
  /** Called after an ingest job was enqueued, to wake the local job runner. */
  onJobEnqueued: () => void;
}

export type UploadService = ReturnType<typeof createUploadService>;

/** Upload sessions: the only way bytes enter the server (contract `/v1/uploads*`). */
export function createUploadService(deps: UploadServiceDeps) {
  const { store, blobs, clock, writes } = deps;

  /** A `/v1` session; a registry push's session is not one (it is reached only through /v2). */
  async function load(uploadId: string): Promise<UploadSession> {
    const session = await store.getUpload(uploadId);
    if (!session || session.repository !== undefined) throw new DomainError('not_found', 'upload_not_found', `upload ${uploadId} does not exist`);
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
        slotSize: input.partSize,
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
     * Streams one part into the session, then records it. Re-sending a part number replaces it
     * (last write wins until complete). A part that fits the pattern of equal parts is written
     * in place, where it ends up in the blob, unless a held part or another write occupies that
     * place: a re-send is kept apart until it is complete, so a refused or aborted re-send never
     * damages the part the server still lists. The write is registered, so a commit on any
     * instance waits until it can no longer touch the bytes (`PartWrites`).
     */
    async putPart(input: { uploadId: string; partNumber: number; body: Readable; declaredLength?: number; signal: AbortSignal }): Promise<UploadPart> {
      const { uploadId, partNumber, declaredLength } = input;
      const session = await load(uploadId);
      assertAcceptsParts(session, clock.now());
      const layout = partLayout(session, partNumber);
      if (layout && declaredLength !== undefined && declaredLength !== layout.size) {
        throw new DomainError('invalid', 'part_size_mismatch', `part ${partNumber} of upload ${session.id} must have exactly ${layout.size} bytes, not ${declaredLength}`);
      }
      // The session never holds more than it expects, so the part may fill only what is left.
      const room = (session.expectedSize ?? Number.MAX_SAFE_INTEGER) - heldWithout(await store.listUploadParts(session.id), partNumber);
      const limit = Math.min(deps.maxPartBytes, room, layout?.size ?? Number.MAX_SAFE_INTEGER);
      if (declaredLength !== undefined && declaredLength > limit) {
        throw new DomainError('payload_too_large', 'part_too_large', `the part has ${declaredLength} bytes; at most ${limit} more are accepted for upload ${session.id}`);
      }
      const size = layout?.size ?? declaredLength;
      const place = placement(session, partNumber, size);
      const writeId = deps.newId();
      const { inPlace } = await store.beginPartWrite({ uploadId, partNumber, writeId, place, leaseMs: writes.leaseMs, now: clock.now() });
      return writeRegisteredPart(deps, { uploadId, partNumber, writeId, offset: inPlace ? place!.offset : undefined, body: input.body, maxBytes: limit, exactSize: inPlace ? size : layout?.size, signal: input.signal });
    },

    /**
     * Verifies the listed parts against those held and hands the session to the ingest worker;
     * part writes still in flight in this process are cut off.
     * "200: Upload session completed or already terminally advanced."
     * @throws insufficient_storage when copying parts that are not in place needs more free space than there is.
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
        await blobs.assertRoomToCommit(parts);
        const job = newJob(INGEST_JOB, deps.newId(), { uploadId: session.id });
        if (await store.completeUpload({ uploadId: session.id, revision: session.revision, parts, job, now: clock.now() })) {
          writes.cutOff(session.id);
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
      writes.cutOff(uploadId);
      await purgeUploadParts(deps, uploadId);
      return view(aborted);
    },
  };
}
