import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { digestHex, parseDigest, type Digest } from '../domain/digest.ts';
import { DomainError } from '../domain/errors.ts';
import type { BlobReader, ByteDriver, ByteRange, StoredBytes } from './driver.ts';

/** A part as stored, with the CRC-32 (IEEE, as zlib and gzip compute it) of its bytes as 8 lowercase hex digits. */
export interface StoredPart extends StoredBytes {
  crc32: string;
}

export type Cas = ReturnType<typeof createCas>;

/**
 * The content-addressed store: the rules that make a blob trusted, written once over any
 * `ByteDriver`. Bytes are metered while they arrive (size limit, CRC-32 for the part's etag);
 * a blob becomes visible only through `commit`, which streams the parts through sha256 exactly
 * once while the driver stages them, compares digest and size with what was expected, and moves
 * the staged bytes to the digest's address if no blob is there yet. A digest already stored is
 * never read again (dedup): the store only ever holds verified bytes.
 */
export function createCas(driver: ByteDriver) {
  /**
   * Streams one part to the driver, in place at `offset` or under a key of its own.
   * @throws payload_too_large after more than `maxBytes` bytes; invalid (`part_size_mismatch`)
   * when `exactSize` is given and the body has another size.
   */
  async function writePart(input: { uploadId: string; offset?: number; body: Readable; maxBytes: number; exactSize?: number; signal: AbortSignal }): Promise<StoredPart> {
    const { maxBytes, exactSize } = input;
    let crc = 0;
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new DomainError('payload_too_large', 'part_too_large', `the part exceeds ${maxBytes} bytes`));
        crc = crc32(chunk, crc);
        done(null, chunk);
      },
    });
    const sink = await driver.openPart({ uploadId: input.uploadId, offset: input.offset });
    try {
      await pipeline(input.body, meter, sink.stream, { signal: input.signal });
      if (exactSize !== undefined && size !== exactSize) throw new DomainError('invalid', 'part_size_mismatch', `the part must have exactly ${exactSize} bytes, not ${size}`);
    } catch (e) {
      return sink.fail(e);
    }
    return { ...(await sink.finish()), size, crc32: crc.toString(16).padStart(8, '0') };
  }

  /**
   * Turns the parts, in order, into a trusted blob. With `expected`, the bytes must have that
   * digest (and size, when given); a digest stored already answers `existed` without reading
   * the parts. Without it, the digest is learned from the bytes.
   * @throws invalid (`size_mismatch`, `digest_mismatch`), leaving the CAS unchanged.
   */
  async function commit(input: { uploadId: string; parts: readonly StoredBytes[]; expected?: { digest: Digest; size?: number }; signal: AbortSignal }): Promise<{ digest: Digest; size: number; outcome: 'created' | 'existed' }> {
    const { uploadId, parts, expected, signal } = input;
    if (expected) {
      // Checked first: a re-run after a crash finds the blob committed and the parts gone.
      const stored = await driver.stat(parseDigest(expected.digest));
      if (stored && expected.size !== undefined && stored.size !== expected.size) {
        throw new DomainError('invalid', 'size_mismatch', `${expected.digest} is stored with ${stored.size} bytes, not the ${expected.size} this upload expects`);
      }
      if (stored) return { digest: expected.digest, size: stored.size, outcome: 'existed' };
    }
    const size = parts.reduce((n, p) => n + p.size, 0);
    if (expected?.size !== undefined && size !== expected.size) {
      throw new DomainError('invalid', 'size_mismatch', `the parts hold ${size} bytes but ${expected.size} were expected`);
    }
    const hash = createHash('sha256');
    const staged = await driver.stage({ uploadId, parts, size, tap: (chunk) => hash.update(chunk), signal });
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    if (expected && digestHex(digest) !== digestHex(expected.digest)) {
      await driver.abandon(staged);
      throw new DomainError('invalid', 'digest_mismatch', `the uploaded bytes have digest ${digest}, not the expected ${expected.digest}`);
    }
    return { digest, size, outcome: await driver.commit(staged, digest) };
  }

  return {
    writePart,
    deletePart: (uploadId: string, part: StoredBytes) => driver.deletePart(uploadId, part),
    discardUpload: (uploadId: string) => driver.discardUpload(uploadId),

    /** @throws insufficient_storage when committing these parts needs more free space than the storage has. */
    async assertRoomToCommit(parts: readonly StoredBytes[]): Promise<void> {
      const needed = driver.stagingBytes(parts);
      if (needed === 0) return;
      const room = await driver.room();
      if (room < needed) {
        throw new DomainError('insufficient_storage', 'insufficient_storage', `committing this upload needs ${needed} bytes of free space for copying its parts, but the storage has ${room}`);
      }
    },

    commit,
    /**
     * Stores bytes the server itself holds (a manifest in memory, an image it built) as a trusted
     * blob, hashed as they are committed, through the private area `areaId` (a fresh upload id),
     * which is gone afterwards.
     */
    async storeStream(input: { body: Readable; maxBytes: number; areaId: string; signal: AbortSignal }): Promise<{ digest: Digest; size: number; outcome: 'created' | 'existed' }> {
      try {
        const part = await writePart({ uploadId: input.areaId, offset: 0, body: input.body, maxBytes: input.maxBytes, signal: input.signal });
        return await commit({ uploadId: input.areaId, parts: [part], signal: input.signal });
      } finally {
        await driver.discardUpload(input.areaId);
      }
    },

    /** Size of a trusted blob, or undefined. */
    stat: async (digest: Digest) => driver.stat(parseDigest(digest)),
    /** @throws not_found when the blob is not stored. */
    open: async (digest: Digest, range?: ByteRange): Promise<BlobReader> => driver.read(parseDigest(digest), range),
    /** Where downloads are redirected to, when the driver hands reads to the storage (else undefined). */
    readUrl: driver.readUrl && ((digest: Digest, response: { contentType: string; contentDisposition: string }) => driver.readUrl!(parseDigest(digest), response)),
    ping: () => driver.ping(),
  };
}
