import type { Writable } from 'node:stream';
import type { Digest } from '../domain/digest.ts';

/** Reads the opened byte range sequentially into caller-owned buffers (no allocation per read). */
export interface BlobReader {
  /** Fills `into` from the current position; resolves to the number of bytes read, 0 at the end of the range. */
  read(into: Uint8Array): Promise<number>;
  /** Releases the underlying handle. Idempotent. */
  close(): Promise<void>;
}

/** An inclusive byte range, `0 <= start <= end < size`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Where one part write's bytes are: a key of their own, or (`offset`) in place in the upload's assembly. */
export interface StoredBytes {
  key: string;
  size: number;
  offset?: number;
}

/** The receiving end of one part write. */
export interface PartSink {
  readonly stream: Writable;
  /** After `stream` finished: where the bytes are. */
  finish(): Promise<Omit<StoredBytes, 'size'>>;
  /** After the write failed with `error`: removes what it wrote of its own and rethrows the error in domain terms. */
  fail(error: unknown): Promise<never>;
}

/** Bytes staged for a commit: the whole blob as one object of the upload, already durable. */
export interface Staged {
  readonly uploadId: string;
  readonly key: string;
}

/**
 * The few byte operations the content-addressed store needs, as both a filesystem and an object
 * store can offer them (distribution's storage driver plays this role). A driver knows where
 * bytes live and how to move them; it never decides what is trusted: hashing, verification and
 * deduplication are the CAS's (`cas.ts`). Each upload has a private area for its parts, removed
 * as a whole; trusted blobs live under their digest and are written only by `commit`.
 *
 * Errors: `not_found` where documented; `unavailable` when the storage cannot be read or written
 * (disk full, I/O error, permissions, an object store that does not answer); an `AbortError`
 * when the signal fired. Nothing else escapes.
 */
export interface ByteDriver {
  /**
   * Opens a sink for one part write into the upload's area; the caller pipes the bytes into
   * `stream`, then calls `finish` (the bytes are stored) or `fail` (they are not). Without
   * `offset` the bytes get a key of their own, and after `fail` nothing of them is left. With
   * `offset` they are written in place, into the upload's assembly (the object that becomes the
   * blob) at that offset; after `fail` that range holds undefined bytes. The caller guarantees that
   * no two writes of overlapping ranges, and no `stage` of the upload, run at the same time
   * (`UploadService` fences them).
   */
  openPart(input: { uploadId: string; offset?: number }): Promise<PartSink>;
  /** Removes the bytes of a part written under a key of its own; bytes in place stay with the assembly. Idempotent. */
  deletePart(uploadId: string, part: StoredBytes): Promise<void>;
  /**
   * Makes the parts, in order, one durable object of `size` bytes, passing every byte through
   * `tap` exactly once and in order (the CAS hashes them there). Parts in place at the offset
   * they have in the blob are not copied; others are. Leaves nothing behind when it throws.
   * @throws unavailable (`part_missing`) when a part's bytes are gone.
   */
  stage(input: { uploadId: string; parts: readonly StoredBytes[]; size: number; tap: (chunk: Uint8Array) => void; signal: AbortSignal }): Promise<Staged>;
  /**
   * Free space `stage` of these parts needs beyond what they occupy already (0 when no byte
   * needs copying, or for storage that is not local disk).
   */
  stagingBytes(parts: readonly StoredBytes[]): number;
  /** Bytes that can still be written, as far as the storage tells (Infinity for object stores). */
  room(): Promise<number>;
  /**
   * Moves staged bytes to the blob `digest` atomically, unless that blob exists: of any number of
   * racing commits of one digest exactly one answers `created`. Never a partly visible blob.
   */
  commit(staged: Staged, digest: Digest): Promise<'created' | 'existed'>;
  /** Drops staged bytes that will not be committed. Idempotent. */
  abandon(staged: Staged): Promise<void>;
  /** Removes an upload's area and everything in it. Idempotent. */
  discardUpload(uploadId: string): Promise<void>;

  /** Size of a stored blob, or undefined; never reads its content. */
  stat(digest: Digest): Promise<{ size: number } | undefined>;
  /**
   * Opens `range` of a stored blob (the whole blob without one).
   * @throws not_found when the blob is not stored.
   */
  read(digest: Digest, range?: ByteRange): Promise<BlobReader>;
  /**
   * Only where reads may be handed to the storage itself (`IMGSRV_S3_REDIRECT=presigned`): a
   * short-lived URL that serves the blob's bytes, ranges included, with these response headers.
   */
  readUrl?(digest: Digest, response: { contentType: string; contentDisposition: string }): Promise<string>;
  /** Every key the driver holds, blobs and upload areas alike (for checks that nothing is left behind, and sweeps). */
  list(): AsyncIterable<string>;
  /** Resolves when the storage can be written; throws `unavailable` otherwise. */
  ping(): Promise<void>;
}
