import type { Digest } from '../domain/digest.ts';

/** Reads the opened byte range sequentially into caller-owned buffers (no allocation per read). */
export interface BlobReader {
  /** Fills `into` from the current position; resolves to the number of bytes read, 0 at the end of the range. */
  read(into: Uint8Array): Promise<number>;
  /** Releases the underlying handle. Idempotent. */
  close(): Promise<void>;
}

/**
 * A part's bytes as stored: `key` names them within the upload's area; `crc32` is the CRC-32
 * (IEEE, as zlib and gzip compute it) of the bytes as 8 lowercase hex digits. A checksum, not a
 * digest: cheap enough to compute on the receive path, while the sha256 of the whole blob is
 * verified once, at promotion.
 */
export interface StoredPart {
  key: string;
  size: number;
  crc32: string;
}

/**
 * The key of a part written in place, into the upload's assembly at its declared offset. Such
 * bytes are replaced by a re-sent part and removed with the area, never on their own.
 */
export const PLACED_PART_KEY = 'placed';

/** Names one part write within an upload's area. */
export interface PartRef {
  number: number;
  key: string;
}

/** An inclusive byte range, `0 <= start <= end < size`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Byte storage: one private area per upload session for its parts, and the content-addressed
 * store (CAS) of trusted blobs. A blob is visible in the CAS only after `promote` computed its
 * sha256 and size from the parts and found them equal to what was expected; a crash at any
 * point leaves either no blob or the whole, verified blob.
 *
 * Errors: `not_found`, `invalid` and `payload_too_large` as documented per method;
 * `unavailable` when the storage cannot be read or written (disk full, I/O error, permissions).
 */
export interface BlobStore {
  /** Size of a stored blob, or undefined. Never reads its content. */
  stat(digest: Digest): Promise<{ size: number } | undefined>;
  /**
   * Opens `range` of a stored blob (the whole blob without one).
   * @throws not_found when the blob is not stored.
   */
  open(digest: Digest, range?: ByteRange): Promise<BlobReader>;
  /**
   * Streams `body` into the upload's area and returns the part's key, size and CRC-32.
   * Without `placement`, the bytes get a new key of their own: concurrent writes of one part
   * number never interfere, and on error or abort nothing is left behind. With `placement`, the
   * part must have exactly `placement.size` bytes and is written into the upload's assembly at
   * `placement.offset` (key `PLACED_PART_KEY`); writes of one part are serialised, the last wins.
   * @throws payload_too_large after more than `maxBytes` (or `placement.size`) bytes;
   * invalid (`part_size_mismatch`) when a placed part ends short; precondition_failed when the
   * upload's area was discarded meanwhile.
   */
  putPart(input: {
    uploadId: string;
    partNumber: number;
    body: AsyncIterable<Uint8Array>;
    maxBytes: number;
    placement?: { offset: number; size: number };
    signal: AbortSignal;
  }): Promise<StoredPart>;
  /** Removes one part's bytes. Idempotent. */
  deletePart(uploadId: string, part: PartRef): Promise<void>;
  /**
   * Streams the parts in order through sha256 into a temporary file, makes it durable and
   * moves it atomically to `digest` in the CAS. Placed parts (`placed`) and a single part are
   * already that file: they are verified, synced and moved without a copy. Resolves to
   * `existed` without reading the parts when the CAS holds the digest already with `size`
   * bytes (it only ever holds verified bytes).
   * @throws invalid (`digest_mismatch`, `size_mismatch`) and leaves the CAS unchanged;
   * unavailable (`part_missing`) when a part's bytes are gone, which a retry may not fix.
   */
  promote(input: { uploadId: string; parts: readonly PartRef[]; placed: boolean; digest: Digest; size: number; signal: AbortSignal }): Promise<'created' | 'existed'>;
  /** Removes everything stored for an upload session. Idempotent. */
  discard(uploadId: string): Promise<void>;
  /** Removes a blob from the CAS. Idempotent. */
  delete(digest: Digest): Promise<void>;
  /** Resolves when the storage can be written; throws `unavailable` otherwise. */
  ping(): Promise<void>;
}
