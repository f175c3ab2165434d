import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { DomainError } from '../../domain/errors.ts';
import { started } from '../../lib/decorate.ts';
import type { Staged, StoredBytes } from '../driver.ts';
import { code, writeAll } from './files.ts';
import { ASSEMBLY_KEY, assemblyPath, partPath, stagePath } from './layout.ts';

/** Chunk size of staging: large enough to amortise syscalls, small enough to stay flat. */
const CHUNK = 1 << 20;
/** Written data is flushed in the background every this many bytes, so writeback overlaps hashing. */
const FLUSH_EVERY = 64 << 20;

/**
 * How the parts become one file. Parts in place at the offset they have in the blob are already
 * there; the others are copied into the assembly at their offset, or, when a part sits in the
 * assembly at another offset (the pattern of equal parts was broken after all), into a fresh
 * file. A single part of its own is the file. Only copied bytes are written twice.
 */
export function plan(parts: readonly StoredBytes[]) {
  let position = 0;
  const placed = parts.map((part) => {
    const at = position;
    position += part.size;
    return { part, at, inPlace: part.offset === at };
  });
  if (parts.length === 1 && parts[0]!.offset === undefined) return { into: 'part' as const, segments: placed.map((s) => ({ ...s, copy: false })) };
  const fresh = placed.some((s) => s.part.offset !== undefined && !s.inPlace);
  return { into: fresh ? ('fresh' as const) : ('assembly' as const), segments: placed.map((s) => ({ ...s, copy: fresh || !s.inPlace })) };
}

/** Bytes `stage` writes for these parts (new blocks on disk). */
export const stagingBytes = (parts: readonly StoredBytes[]) => plan(parts).segments.reduce((n, s) => n + (s.copy ? s.part.size : 0), 0);

/**
 * Stages the parts as planned: every byte is read once, in blob order, passed to `tap`, and
 * written to the target where it is not there yet, pipelined over three buffers (the next chunk
 * is read while the current one is hashed and earlier ones are written). The target is synced
 * before this returns; a temporary target is removed when it throws.
 */
export async function stage(input: { root: string; uploadId: string; parts: readonly StoredBytes[]; size: number; tap: (chunk: Uint8Array) => void; signal: AbortSignal }): Promise<Staged> {
  const { signal, tap } = input;
  const { into, segments } = plan(input.parts);
  const nonce = randomBytes(16).toString('hex');
  const [target, name] =
    into === 'part' ? [partPath(input.root, input.uploadId, input.parts[0]!.key), `part-${input.parts[0]!.key}`] : into === 'fresh' ? [stagePath(input.root, input.uploadId, nonce), `stage-${nonce}.tmp`] : [assemblyPath(input.root, input.uploadId), ASSEMBLY_KEY];
  const temporary = into === 'fresh';
  const flags = into === 'part' ? 'r+' : into === 'fresh' ? 'wx' : constants.O_RDWR | constants.O_CREAT;
  const out = await open(target, flags).catch((e: unknown) => {
    throw code(e) === 'ENOENT' ? missing('the bytes of the upload are missing') : e;
  });
  const sources = new Map<string, FileHandle>([[target, out]]);
  const source = async (part: StoredBytes) => {
    const file = part.offset === undefined ? partPath(input.root, input.uploadId, part.key) : assemblyPath(input.root, input.uploadId);
    let fh = sources.get(file);
    if (!fh) {
      fh = await open(file, 'r').catch((e: unknown) => {
        throw code(e) === 'ENOENT' ? missing('the bytes of a part are missing') : e;
      });
      sources.set(file, fh);
    }
    return fh;
  };
  const buffers = [0, 1, 2].map(() => Buffer.allocUnsafe(CHUNK));
  // The write from each buffer still in flight; a buffer is read into only once its write is done.
  const writes: Promise<unknown>[] = [Promise.resolve(), Promise.resolve(), Promise.resolve()];
  const readInto = async (c: Chunk, b: number): Promise<Chunk> => {
    await writes[b];
    const fh = await source(c.segment.part);
    for (let got = 0; got < c.length; ) {
      const { bytesRead } = await fh.read(buffers[b]!, got, c.length - got, (c.segment.part.offset ?? 0) + c.offset + got);
      if (bytesRead === 0) throw missing(`the bytes of a part end ${c.segment.part.size - c.offset - got} bytes early`);
      got += bytesRead;
    }
    return c;
  };
  const chunks = chunksOf(segments);
  let reading: Promise<Chunk> | undefined;
  let flushing: Promise<unknown> = Promise.resolve();
  try {
    let next = chunks.next();
    reading = next.done ? undefined : started(readInto(next.value, 0));
    for (let turn = 0, sinceFlush = 0; reading; turn++) {
      const c = await reading;
      next = chunks.next();
      reading = next.done ? undefined : started(readInto(next.value, (turn + 1) % 3));
      signal.throwIfAborted();
      const buffer = buffers[turn % 3]!.subarray(0, c.length);
      tap(buffer);
      if (!c.segment.copy) continue;
      writes[turn % 3] = started(writeAll(out, buffer, c.length, c.segment.at + c.offset));
      if ((sinceFlush += c.length) >= FLUSH_EVERY) {
        sinceFlush = 0;
        await flushing;
        flushing = started(Promise.all(writes).then(() => out.datasync()));
      }
    }
    await Promise.all([...writes, flushing]);
    await out.truncate(input.size);
    await out.sync();
  } catch (e) {
    if (temporary) await rm(target, { force: true });
    throw e;
  } finally {
    await Promise.allSettled([reading, flushing, ...writes]);
    await Promise.all([...sources.values()].map((fh) => fh.close()));
  }
  return { uploadId: input.uploadId, key: name };
}

type Segment = ReturnType<typeof plan>['segments'][number];

interface Chunk {
  segment: Segment;
  offset: number;
  length: number;
}

function* chunksOf(segments: readonly Segment[]): Generator<Chunk> {
  for (const segment of segments) {
    for (let offset = 0; offset < segment.part.size; offset += CHUNK) yield { segment, offset, length: Math.min(CHUNK, segment.part.size - offset) };
  }
}

const missing = (detail: string) => new DomainError('unavailable', 'part_missing', detail);
