import { Readable } from 'node:stream';
import type { Cas } from '../blobs/cas.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError } from '../domain/errors.ts';
import { INGEST_JOB, newJob } from '../domain/job.ts';
import { assertAcceptsParts, isOpen, type UploadSession } from '../domain/upload.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { ServiceDeps } from './deps.ts';
import type { IngestService } from './ingest.ts';
import { writeRegisteredPart, type PartWriteDeps } from './part-write.ts';
import type { PartWrites } from './part-writes.ts';
import { purgeUploadParts } from './upload-parts.ts';

export interface RegistryUploadDeps extends Pick<ServiceDeps, 'clock' | 'log' | 'newId'> {
  store: PartWriteDeps['store'] & Pick<MetadataStore, 'insertUpload' | 'getUpload' | 'listUploadParts' | 'beginAppend' | 'completeUpload' | 'transitionUpload' | 'markUploadPurged'>;
  blobs: PartWriteDeps['blobs'] & Pick<Cas, 'assertRoomToCommit'>;
  writes: PartWrites;
  ingest: Pick<IngestService, 'ingest'>;
  uploadTtlMs: number;
  /** Largest blob a push may upload. */
  maxBlobBytes: number;
}

export type RegistryUploads = ReturnType<typeof createRegistryUploads>;

/** How long a synchronous commit has before its ingest job may take over (a commit that died with its process). */
const SYNC_COMMIT_GRACE_MS = 10 * 60_000;

/**
 * Blob uploads of OCI pushes: a session of one repository that learns digest and size only in
 * its last request. Chunks are appended in order, each written in place at the end of what the
 * session holds, and the blob is committed synchronously (`commit`) through the same CAS rules,
 * part-write fence and ingest as `/v1` uploads; the ingest job enqueued with it takes over if the
 * process dies meanwhile.
 */
export function createRegistryUploads(deps: RegistryUploadDeps) {
  const { store, blobs, clock, writes } = deps;

  async function load(repository: string, uploadId: string): Promise<UploadSession> {
    const session = await store.getUpload(uploadId);
    if (!session || session.repository !== repository) throw new DomainError('not_found', 'blob_upload_unknown', `no blob upload ${uploadId} in repository ${repository}`);
    return session;
  }
  /** Runs the ingest of a completed session here and now; its job finds nothing left to do later. */
  async function finish(uploadId: string, input: { repository: string; digest: Digest; signal: AbortSignal }): Promise<UploadSession> {
    await deps.ingest.ingest(uploadId, input.signal);
    const done = await load(input.repository, uploadId);
    if (done.state === 'failed') throw new DomainError('invalid', 'digest_mismatch', done.failureReason ?? `the uploaded bytes are not ${input.digest}`);
    return done;
  }

  /**
   * Appends a chunk at the end of what the session holds; `at`, when the client gave a range,
   * must be that end. Returns the bytes the session holds after it.
   * @throws range_not_satisfiable for a chunk out of order or while another one is written.
   */
  async function append(input: { repository: string; uploadId: string; at?: number; length?: number; body: Readable; signal: AbortSignal }): Promise<number> {
    const session = await load(input.repository, input.uploadId);
    assertAcceptsParts(session, clock.now());
    const writeId = deps.newId();
    const { partNumber, offset } = await store.beginAppend({ uploadId: session.id, writeId, at: input.at, leaseMs: writes.leaseMs, now: clock.now() });
    const limit = deps.maxBlobBytes - offset;
    if (input.length !== undefined && input.length > limit) {
      await store.endPartWrite(writeId);
      throw new DomainError('payload_too_large', 'blob_too_large', `the blob would exceed ${deps.maxBlobBytes} bytes`);
    }
    const part = await writeRegisteredPart(deps, { uploadId: session.id, partNumber, writeId, offset, body: input.body, maxBytes: limit, exactSize: input.length, signal: input.signal });
    return offset + part.size;
  }

  const held = async (uploadId: string) => (await store.listUploadParts(uploadId)).reduce((n, p) => n + p.size, 0);

  return {
    /** A new session for a push into `repository`. */
    async open(repository: string): Promise<UploadSession> {
      const now = clock.now();
      const session: UploadSession = { id: deps.newId(), state: 'created', repository, revision: 0, expiresAt: new Date(now.getTime() + deps.uploadTtlMs), createdAt: now, updatedAt: now };
      await store.insertUpload(session);
      return session;
    },

    /** The session and how many bytes it holds (the `Range` of an upload status). */
    async status(repository: string, uploadId: string): Promise<{ session: UploadSession; size: number }> {
      const session = await load(repository, uploadId);
      if (!isOpen(session)) throw new DomainError('not_found', 'blob_upload_unknown', `blob upload ${uploadId} is ${session.state}`);
      return { session, size: await held(uploadId) };
    },

    append,

    /**
     * The synchronous commit: the session's parts, in order, must hash to `digest`; the blob is
     * committed before this returns. The ingest job is enqueued with it, due only after
     * `SYNC_COMMIT_GRACE_MS`, so a process that dies meanwhile leaves the commit to a worker;
     * when this call finishes it, the job finds nothing left to do.
     * @throws invalid (`digest_mismatch`) when the bytes are not that blob; the session has failed.
     */
    async commit(input: { repository: string; uploadId: string; digest: Digest; signal: AbortSignal }): Promise<UploadSession> {
      const session = await load(input.repository, input.uploadId);
      if (session.state === 'ready' && session.expectedDigest === input.digest) return session;
      // A commit that a dead process left unfinished: finish it now instead of making the client start over.
      if ((session.state === 'completed' || session.state === 'ingesting') && session.expectedDigest === input.digest) return finish(session.id, input);
      assertAcceptsParts(session, clock.now());
      // An upload that holds nothing is the empty blob: one empty part.
      if ((await store.listUploadParts(session.id)).length === 0) await append({ repository: input.repository, uploadId: session.id, body: Readable.from([]), signal: input.signal });
      const current = await load(input.repository, session.id);
      const parts = await store.listUploadParts(session.id);
      await blobs.assertRoomToCommit(parts);
      const size = parts.reduce((n, p) => n + p.size, 0);
      const now = clock.now();
      const job = newJob(INGEST_JOB, deps.newId(), { uploadId: session.id }, new Date(now.getTime() + SYNC_COMMIT_GRACE_MS));
      if (!(await store.completeUpload({ uploadId: session.id, revision: current.revision, parts, job, expected: { digest: input.digest, size }, now }))) {
        throw new DomainError('precondition_failed', 'upload_changed', `upload ${session.id} changed while it was being committed; retry`);
      }
      writes.cutOff(session.id);
      return finish(session.id, input);
    },

    /** Cancels an open session and removes its bytes. */
    async cancel(repository: string, uploadId: string): Promise<void> {
      const session = await load(repository, uploadId);
      if (!(await store.transitionUpload({ uploadId: session.id, from: ['created', 'uploading'], to: 'aborted', reason: 'cancelled by the client', now: clock.now() }))) {
        throw new DomainError('not_found', 'blob_upload_unknown', `blob upload ${uploadId} is ${session.state}`);
      }
      writes.cutOff(uploadId);
      await purgeUploadParts(deps, uploadId);
    },
  };
}
