import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Digest } from '../../src/domain/digest.ts';

export const sha256 = (b: Uint8Array): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const random = (n: number): Buffer => randomBytes(n);
export const streamOf = (...chunks: Uint8Array[]): Readable => Readable.from(chunks.map((c) => Buffer.from(c)));
export const neverAborted = () => new AbortController().signal;

/** Splits `bytes` into `count` nearly equal parts. */
export function split(bytes: Buffer, count: number): Buffer[] {
  const size = Math.ceil(bytes.length / count);
  return Array.from({ length: count }, (_, i) => bytes.subarray(i * size, Math.min(bytes.length, (i + 1) * size)));
}
