import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { crc32 } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { digestHex } from '../../domain/digest.ts';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import { decorate, started } from '../../lib/decorate.ts';
import { PLACED_PART_KEY, type BlobReader, type BlobStore, type PartRef } from '../blob-store.ts';
import { assemblyPath, blobPath, blobsDir, partPath, promoteTempPath, tmpDir, uploadDir, uploadsDir } from './layout.ts';

/** Chunk size of the promotion copy: large enough to amortise syscalls, small enough to stay flat. */
const COPY_CHUNK = 1 << 20;
/** Flush written data to disk in the background every this many bytes, so writeback overlaps hashing. */
const FLUSH_EVERY = 64 << 20;

export interface FsBlobStoreOptions {
  root: string;
  /** Pauses at a named crash-test point; see config `IMGSRV_FAILPOINTS`. */
  failpoint?: (name: string) => Promise<void>;
}

/** `BlobStore` on a local (or shared POSIX) filesystem. The layout is in `layout.ts`. */
export async function createFsBlobStore({ root, failpoint = async () => {} }: FsBlobStoreOptions): Promise<BlobStore> {
  for (const dir of [blobsDir(root), uploadsDir(root), tmpDir(root)]) await mkdir(dir, { recursive: true });

  const store: BlobStore = {
    async stat(digest) {
      const size = await sizeOf(blobPath(root, digest));
      return size === undefined ? undefined : { size };
    },

    async open(digest, range) {
      let fh: FileHandle;
      try {
        fh = await open(blobPath(root, digest), 'r');
      } catch (e) {
        if (code(e) === 'ENOENT') throw new DomainError('not_found', 'blob_not_found', `blob ${digest} is not stored`);
        throw e;
      }
      const end = range ? range.end + 1 : (await fh.stat()).size;
      return fileReader(fh, range?.start ?? 0, end);
    },

    async putPart({ uploadId, partNumber, body, maxBytes, placement, signal }) {
      const limit = placement ? Math.min(maxBytes, placement.size) : maxBytes;
      let crc = 0;
      let size = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          size += chunk.length;
          if (size > limit) return done(new DomainError('payload_too_large', 'part_too_large', `the part exceeds ${limit} bytes`));
          crc = crc32(chunk, crc);
          done(null, chunk);
        },
      });
      const etag = () => crc.toString(16).padStart(8, '0');
      const storageError = (e: unknown) => {
        if (code(e) === 'ENOENT') return new DomainError('precondition_failed', 'upload_area_gone', `upload ${uploadId} ended while part ${partNumber} was being written`);
        if (code(e) === 'EFBIG') return new DomainError('payload_too_large', 'part_too_large', 'the part exceeds the largest file this storage accepts');
        return e;
      };
      if (placement) {
        const file = assemblyPath(root, uploadId);
        await mkdir(dirname(file), { recursive: true });
        return serialised(`${uploadId}/${partNumber}`, async () => {
          try {
            const fh = await open(file, constants.O_RDWR | constants.O_CREAT);
            await pipeline(body, meter, fh.createWriteStream({ start: placement.offset, highWaterMark: COPY_CHUNK }), { signal });
          } catch (e) {
            throw storageError(e);
          }
          if (size !== placement.size) {
            throw new DomainError('invalid', 'part_size_mismatch', `part ${partNumber} must have exactly ${placement.size} bytes, not ${size}`);
          }
          return { key: PLACED_PART_KEY, size, crc32: etag() };
        });
      }
      const key = randomBytes(16).toString('hex');
      const file = partPath(root, uploadId, partNumber, key);
      await mkdir(dirname(file), { recursive: true });
      try {
        await pipeline(body, meter, createWriteStream(file, { flags: 'wx', highWaterMark: COPY_CHUNK }), { signal });
      } catch (e) {
        await rm(file, { force: true });
        throw storageError(e);
      }
      return { key, size, crc32: etag() };
    },

    async deletePart(uploadId, part) {
      if (part.key === PLACED_PART_KEY) return;
      await rm(partPath(root, uploadId, part.number, part.key), { force: true });
    },

    async promote({ uploadId, parts, placed, digest, size, signal }) {
      const target = blobPath(root, digest);
      const stored = await sizeOf(target);
      if (stored !== undefined) {
        if (stored !== size) throw new DomainError('invalid', 'size_mismatch', `${digest} is stored with ${stored} bytes, not the ${size} this upload expects`);
        return 'existed';
      }
      // Placed parts, or a single part, already are the file: verify and sync it in place, then
      // rename it (no copy). Anything else is concatenated into a temporary file first.
      const inPlace = placed ? assemblyPath(root, uploadId) : parts.length === 1 ? partPath(root, uploadId, parts[0]!.number, parts[0]!.key) : undefined;
      const temp = inPlace ?? promoteTempPath(root, uploadId, randomBytes(16).toString('hex'));
      try {
        const actual = inPlace ? await hashInPlace(inPlace, signal) : await concatenate({ root, uploadId, parts, into: temp, signal });
        if (actual.size !== size) {
          throw new DomainError('invalid', 'size_mismatch', `the parts hold ${actual.size} bytes but ${size} were expected`);
        }
        if (actual.sha256 !== digestHex(digest)) {
          throw new DomainError('invalid', 'digest_mismatch', `the uploaded bytes have digest sha256:${actual.sha256}, not the expected ${digest}`);
        }
        await failpoint('promote-before-rename');
        await mkdir(dirname(target), { recursive: true });
        await rename(temp, target);
        await syncDir(dirname(target));
        await failpoint('promote-after-rename');
        return 'created';
      } finally {
        // Bytes verified in place stay until the session is purged, so an interrupted promotion can re-run.
        if (!inPlace) await rm(temp, { force: true });
      }
    },

    async discard(uploadId) {
      await rm(uploadDir(root, uploadId), { recursive: true, force: true });
    },

    async delete(digest) {
      await rm(blobPath(root, digest), { force: true });
    },

    async ping() {
      const probe = join(tmpDir(root), `ready-${process.pid}-${randomBytes(4).toString('hex')}`);
      await writeFile(probe, 'ok');
      await unlink(probe);
    },
  };
  return withStorageErrors(store);
}

/**
 * Copies the parts in order into `into` while hashing them, as a three-stage pipeline over three
 * buffers: the next chunk is read while the current one is hashed and the previous one written.
 * Written data is flushed in the background every FLUSH_EVERY bytes, so the final fsync is short.
 */
async function concatenate(input: { root: string; uploadId: string; parts: readonly PartRef[]; into: string; signal: AbortSignal }) {
  const { signal } = input;
  const hash = createHash('sha256');
  const source = partsReader(input.root, input.uploadId, input.parts);
  const out = await open(input.into, 'w');
  const buffers = [0, 1, 2].map(() => Buffer.allocUnsafe(COPY_CHUNK));
  let size = 0;
  let pendingRead = started(source.read(buffers[0]!));
  let pendingWrite: Promise<unknown> = Promise.resolve();
  let pendingFlush: Promise<unknown> = Promise.resolve();
  let sinceFlush = 0;
  try {
    for (let turn = 0; ; turn++) {
      const n = await pendingRead;
      if (n === 0) break;
      signal.throwIfAborted();
      const current = buffers[turn % 3]!;
      // The buffer written two turns ago is free: that write was awaited in the previous turn.
      pendingRead = started(source.read(buffers[(turn + 1) % 3]!));
      hash.update(current.subarray(0, n));
      await pendingWrite;
      pendingWrite = started(writeAll(out, current, n, size));
      size += n;
      sinceFlush += n;
      if (sinceFlush >= FLUSH_EVERY) {
        sinceFlush = 0;
        await pendingFlush;
        pendingFlush = started(pendingWrite.then(() => out.datasync()));
      }
    }
    await pendingWrite;
    await pendingFlush;
    await out.sync();
  } finally {
    await Promise.allSettled([pendingRead, pendingWrite, pendingFlush]);
    await Promise.all([out.close(), source.close()]);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Reads the parts' bytes in order as one sequence; one read at a time. */
function partsReader(root: string, uploadId: string, parts: readonly PartRef[]) {
  let index = 0;
  let current: FileHandle | undefined;
  return {
    async read(into: Buffer): Promise<number> {
      for (;;) {
        if (!current) {
          const part = parts[index];
          if (!part) return 0;
          try {
            current = await open(partPath(root, uploadId, part.number, part.key), 'r');
          } catch (e) {
            if (code(e) === 'ENOENT') throw new DomainError('unavailable', 'part_missing', `the bytes of part ${part.number} are missing`);
            throw e;
          }
        }
        const { bytesRead } = await current.read(into, 0, into.length, null);
        if (bytesRead > 0) return bytesRead;
        await current.close();
        current = undefined;
        index++;
      }
    },
    async close() {
      await current?.close();
      current = undefined;
    },
  };
}

async function writeAll(fh: FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  let written = 0;
  while (written < length) {
    const { bytesWritten } = await fh.write(buffer, written, length - written, position + written);
    written += bytesWritten;
  }
}

/** Runs `fn` after every earlier call with the same key settled (one writer per placed part). */
const queues = new Map<string, Promise<unknown>>();
function serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  const settled = next.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  void settled.then(() => queues.get(key) === settled && queues.delete(key));
  return next;
}

/** Hashes a file and makes it durable without copying it. */
async function hashInPlace(file: string, signal: AbortSignal) {
  const hash = createHash('sha256');
  let fh: FileHandle;
  try {
    fh = await open(file, 'r+');
  } catch (e) {
    if (code(e) === 'ENOENT') throw new DomainError('unavailable', 'part_missing', 'the bytes of the upload are missing');
    throw e;
  }
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  let size = 0;
  try {
    const flush = started(fh.datasync());
    for (let n; (n = (await fh.read(buffer, 0, COPY_CHUNK, null)).bytesRead) > 0; size += n) {
      signal.throwIfAborted();
      hash.update(buffer.subarray(0, n));
    }
    await flush;
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { size, sha256: hash.digest('hex') };
}

/** Reads [start, end) of an open file into caller buffers. */
function fileReader(fh: FileHandle, start: number, end: number): BlobReader {
  let position = start;
  let closed = false;
  return {
    async read(into) {
      const want = Math.min(into.length, end - position);
      if (want <= 0) return 0;
      const { bytesRead } = await fh.read(into, 0, want, position);
      position += bytesRead;
      return bytesRead;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
}

const code = (e: unknown): string | undefined => (e as { code?: string } | null)?.code;

const STORAGE_UNAVAILABLE = new Set(['ENOSPC', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EDQUOT', 'EMFILE', 'ENFILE', 'ENOTDIR', 'ESTALE']);

/** Translates filesystem failures into `unavailable` at the boundary; `DomainError`s and aborts pass through. */
const withStorageErrors = (store: BlobStore): BlobStore =>
  decorate(store, async (_method, call) => {
    try {
      return await call();
    } catch (e) {
      const c = code(e);
      if (!isDomainError(e) && c && STORAGE_UNAVAILABLE.has(c)) {
        throw new DomainError('unavailable', 'storage_unavailable', `blob storage failed (${c}); retry later`, { cause: e });
      }
      throw e;
    }
  });
