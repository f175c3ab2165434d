import type { Hash } from 'node:crypto';
import type { Cas } from '../blobs/cas.ts';
import type { Digest } from '../domain/digest.ts';

const CHUNK = 1 << 20;

/** A blob's bytes as fresh chunks, for a consumer that may keep them (a decompressor). */
export async function* blobChunks(blobs: Pick<Cas, 'open'>, digest: Digest, signal: AbortSignal): AsyncGenerator<Buffer> {
  const reader = await blobs.open(digest);
  try {
    for (;;) {
      signal.throwIfAborted();
      const chunk = Buffer.allocUnsafe(CHUNK);
      const n = await reader.read(chunk);
      if (n === 0) return;
      yield chunk.subarray(0, n);
    }
  } finally {
    await reader.close();
  }
}

/** Feeds blobs into `hash` one after the other, through one reused buffer. */
export async function hashBlobs(hash: Hash, blobs: Pick<Cas, 'open'>, digests: readonly Digest[], signal: AbortSignal): Promise<void> {
  const buffer = Buffer.allocUnsafe(CHUNK);
  for (const digest of digests) {
    const reader = await blobs.open(digest);
    try {
      for (let n; (n = await reader.read(buffer)) > 0; ) {
        signal.throwIfAborted();
        hash.update(buffer.subarray(0, n));
      }
    } finally {
      await reader.close();
    }
  }
}
