import type { Digest } from './digest.ts';
import { DomainError } from './errors.ts';

/**
 * Upload session state machine (contract `UploadState`):
 *
 *   created ──part──▶ uploading ──complete──▶ completed ──worker──▶ ingesting ──▶ ready
 *      │                 │                                              └──────▶ failed
 *      └──abort/expiry───┴──▶ aborted
 *
 * Bytes become a trusted blob only in `ready`, after the server verified digest and size.
 */
export const UPLOAD_STATES = ['created', 'uploading', 'completed', 'ingesting', 'ready', 'failed', 'aborted'] as const;
export type UploadState = (typeof UPLOAD_STATES)[number];

export const MIN_PART_NUMBER = 1;
export const MAX_PART_NUMBER = 10_000;

/** States in which parts may be (re-)sent and the session may still expire or be aborted. */
export const OPEN_STATES: readonly UploadState[] = ['created', 'uploading'];
/** States in which nothing about the session can change any more. */
export const TERMINAL_STATES: readonly UploadState[] = ['ready', 'failed', 'aborted'];

/**
 * Two ways to learn what is being uploaded. A `/v1` session states digest and size when it
 * begins, and is verified asynchronously by the ingest job after `complete`. An OCI push states
 * the digest only in its final request and expects the answer once the blob is committed: its
 * session has neither until then, and is committed synchronously (`UploadService.commit`).
 */
export interface UploadSession {
  id: string;
  /** The digest the bytes must hash to; unknown until commit for a session that learns it at the end. */
  expectedDigest?: Digest;
  /** The size the parts must add up to; unknown for a session that learns it at the end. */
  expectedSize?: number;
  state: UploadState;
  mediaTypeHint?: string;
  filenameHint?: string;
  /** Declared fixed part size: every part but the last must have exactly this size (see `partLayout`). */
  partSize?: number;
  /**
   * The size of every part but the last, as far as the server knows it: the declared part size,
   * or else the length part 1 announced. Parts that fit the pattern are written straight to their
   * place in the blob (see `placement`); the others are kept apart and copied at commit.
   */
  slotSize?: number;
  /** The OCI repository a registry push uploads into; absent for `/v1` sessions. */
  repository?: string;
  failureReason?: string;
  /** Bumped by every part write; `complete` commits only the part list it verified. */
  revision: number;
  expiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * One stored part. `key` names the bytes in the byte driver; `offset` is set when they were
 * written in place, into the upload's assembly at that offset. `etag` is derived from the
 * content (CRC-32), so a resuming client can tell which of its parts arrived intact; integrity
 * of the whole blob rests on the sha256 verified at commit.
 */
export interface UploadPart {
  number: number;
  size: number;
  etag: string;
  key: string;
  offset?: number;
}

export interface RequestedPart {
  number: number;
  etag: string;
  size: number;
}

export const isOpen = (s: UploadSession): boolean => OPEN_STATES.includes(s.state);
export const isExpired = (s: UploadSession, now: Date): boolean => isOpen(s) && s.expiresAt.getTime() <= now.getTime();

/** Throws `precondition_failed` unless the session accepts a part write now. */
export function assertAcceptsParts(s: UploadSession, now: Date): void {
  if (!isOpen(s)) {
    throw new DomainError('precondition_failed', 'upload_not_open', `upload ${s.id} is ${s.state}; parts are accepted only while it is created or uploading`);
  }
  if (isExpired(s, now)) {
    throw new DomainError('precondition_failed', 'upload_expired', `upload ${s.id} expired at ${s.expiresAt.toISOString()}; begin a new upload`);
  }
}

/**
 * With a declared part size, part n (1-based) of N = ceil(expectedSize / partSize) parts starts at
 * (n - 1) * partSize and has exactly partSize bytes, the last one the remainder; an empty upload
 * has one empty part. Without one, parts may have any size and no fixed place.
 */
export function partLayout(s: UploadSession, number: number): { offset: number; size: number } | undefined {
  if (s.partSize === undefined || s.expectedSize === undefined) return undefined;
  const count = Math.max(1, Math.ceil(s.expectedSize / s.partSize));
  if (number > count) {
    throw new DomainError('invalid', 'part_number_out_of_range', `upload ${s.id} has ${count} parts of ${s.partSize} bytes; there is no part ${number}`);
  }
  const offset = (number - 1) * s.partSize;
  return { offset, size: Math.min(s.partSize, s.expectedSize - offset) };
}

/**
 * Where part `number` of `size` bytes goes when it follows the pattern of equal parts (every
 * part but the last `slotSize` bytes, the last the remainder): `(number - 1) × slotSize`. A
 * session without a known slot size learns it from part 1 (`learnsSlotSize`). Undefined when the
 * part breaks the pattern or its size is not announced: it is then kept apart and copied into
 * place at commit, so any part sizes stay correct and the common case writes each byte once.
 */
export function placement(s: UploadSession, number: number, size: number | undefined): { offset: number; slotSize: number; learnsSlotSize: boolean } | undefined {
  if (size === undefined || s.expectedSize === undefined) return undefined;
  const slot = s.slotSize ?? (number === 1 && size > 0 ? size : undefined);
  if (slot === undefined) return undefined;
  const offset = (number - 1) * slot;
  const full = size === slot && offset + size <= s.expectedSize;
  const last = size <= slot && offset + size === s.expectedSize;
  return full || last ? { offset, slotSize: slot, learnsSlotSize: s.slotSize === undefined } : undefined;
}

/** Bytes the session would hold with `partSize` as part `number`, given what it holds now. */
export function heldWithout(held: readonly UploadPart[], number: number): number {
  return held.reduce((n, p) => (p.number === number ? n : n + p.size), 0);
}

/** A session never holds more bytes than it expects: a client cannot park more on the server. */
export function assertFitsExpectedSize(s: UploadSession, held: readonly UploadPart[], part: { number: number; size: number }): void {
  const total = heldWithout(held, part.number) + part.size;
  if (s.expectedSize !== undefined && total > s.expectedSize) {
    throw new DomainError('payload_too_large', 'upload_too_large', `with part ${part.number} upload ${s.id} would hold ${total} bytes, more than the ${s.expectedSize} it expects`);
  }
}

/**
 * Checks a `complete` request against the parts the server holds, as the contract's
 * `CompleteUploadRequest` describes: listed in ascending order, each one held with the same
 * etag and size, adding up to the expected size. Parts held but not listed are dropped.
 * Returns the parts that make up the blob, in order.
 */
export function selectCompletedParts(s: UploadSession, held: readonly UploadPart[], requested: readonly RequestedPart[]): UploadPart[] {
  const byNumber = new Map(held.map((p) => [p.number, p]));
  const selected: UploadPart[] = [];
  let previous = 0;
  let total = 0;
  for (const r of requested) {
    if (r.number <= previous) {
      throw new DomainError('invalid', 'parts_not_ascending', `parts must be listed in ascending order without duplicates; part ${r.number} follows part ${previous}`);
    }
    previous = r.number;
    const part = byNumber.get(r.number);
    if (!part) {
      throw new DomainError('precondition_failed', 'part_missing', `part ${r.number} has not been uploaded to upload ${s.id}`);
    }
    if (part.etag !== r.etag) {
      throw new DomainError('precondition_failed', 'part_etag_mismatch', `part ${r.number}: etag "${r.etag}" does not match the part the server holds ("${part.etag}"); re-send the part or list its current etag`);
    }
    if (part.size !== r.size) {
      throw new DomainError('precondition_failed', 'part_size_mismatch', `part ${r.number}: size_bytes ${r.size} does not match the ${part.size} bytes the server holds`);
    }
    total += part.size;
    selected.push(part);
  }
  if (s.expectedSize !== undefined && total !== s.expectedSize) {
    throw new DomainError('invalid', 'upload_size_mismatch', `the listed parts hold ${total} bytes but upload ${s.id} expects ${s.expectedSize}`);
  }
  return selected;
}

/**
 * How long a part write holds its lease in the metadata store. Every instance can see who is
 * still writing into an upload, so commit can wait until no write can touch the bytes any more
 * (see `UploadRepository.beginPartWrite`). A writer renews every third of it and stops writing
 * by itself when it could not renew for `PART_WRITE_SELF_FENCE_MS`, before the lease runs out.
 */
export const PART_WRITE_LEASE_MS = 15_000;
export const PART_WRITE_SELF_FENCE_MS = 10_000;
