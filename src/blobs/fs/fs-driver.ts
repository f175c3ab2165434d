import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rm, statfs, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import { decorate } from '../../lib/decorate.ts';
import type { ByteDriver } from '../driver.ts';
import { code, fileReader, sizeOf, syncDir } from './files.ts';
import { ASSEMBLY_KEY, assemblyPath, blobPath, blobsDir, partPath, stagedPath, tmpDir, uploadDir, uploadsDir } from './layout.ts';
import { stage, stagingBytes } from './stage.ts';

const WRITE_CHUNK = 1 << 20;

export interface FsDriverOptions {
  root: string;
  /** Pauses at a named crash-test point; see config `IMGSRV_FAILPOINTS`. */
  failpoint?: (name: string) => Promise<void>;
}

/**
 * `ByteDriver` on a local (or shared POSIX) filesystem; the layout is in `layout.ts`. Staged
 * bytes are fsynced before `commit` links them to the blob's name (link fails if the name
 * exists, so exactly one racing commit creates the blob) and the directory is fsynced after:
 * a crash leaves either no blob or the whole, verified one.
 */
export async function createFsDriver({ root, failpoint = async () => {} }: FsDriverOptions): Promise<ByteDriver> {
  for (const dir of [blobsDir(root), uploadsDir(root), tmpDir(root)]) await mkdir(dir, { recursive: true });

  const driver: ByteDriver = {
    async openPart({ uploadId, offset }) {
      await mkdir(uploadDir(root, uploadId), { recursive: true });
      if (offset !== undefined) {
        const fh = await open(assemblyPath(root, uploadId), constants.O_RDWR | constants.O_CREAT);
        // The stream owns the handle from here and closes it on finish, error and abort alike.
        const stream = fh.createWriteStream({ start: offset, highWaterMark: WRITE_CHUNK });
        return { stream, finish: async () => ({ key: ASSEMBLY_KEY, offset }), fail: (e) => failWrite(uploadId, e) };
      }
      const key = randomBytes(16).toString('hex');
      const file = partPath(root, uploadId, key);
      const stream = createWriteStream(file, { flags: 'wx', highWaterMark: WRITE_CHUNK });
      return {
        stream,
        finish: async () => ({ key }),
        async fail(e) {
          stream.destroy();
          await rm(file, { force: true });
          return failWrite(uploadId, e);
        },
      };
    },

    async deletePart(uploadId, part) {
      if (part.offset !== undefined) return;
      await rm(partPath(root, uploadId, part.key), { force: true });
    },

    stage: (input) => stage({ root, ...input }),
    stagingBytes,

    async room() {
      const s = await statfs(root);
      return s.bavail * s.bsize;
    },

    async commit(staged, digest) {
      const from = stagedPath(root, staged.uploadId, staged.key);
      const target = blobPath(root, digest);
      await failpoint('blob-commit-before');
      await mkdir(dirname(target), { recursive: true });
      let outcome: 'created' | 'existed' = 'created';
      try {
        await link(from, target);
      } catch (e) {
        if (code(e) !== 'EEXIST') throw e;
        outcome = 'existed';
      }
      // Only the blob's name may point at its bytes: no later write by path can reach them.
      await unlink(from);
      await Promise.all([syncDir(dirname(target)), syncDir(dirname(from))]);
      await failpoint('blob-commit-after');
      return outcome;
    },

    async abandon(staged) {
      if (staged.key.startsWith('stage-')) await rm(stagedPath(root, staged.uploadId, staged.key), { force: true });
    },

    async discardUpload(uploadId) {
      await rm(uploadDir(root, uploadId), { recursive: true, force: true });
    },

    async stat(digest) {
      const size = await sizeOf(blobPath(root, digest));
      return size === undefined ? undefined : { size };
    },

    async read(digest, range) {
      let fh: FileHandle;
      try {
        fh = await open(blobPath(root, digest), 'r');
      } catch (e) {
        if (code(e) === 'ENOENT') throw new DomainError('not_found', 'blob_not_found', `blob ${digest} is not stored`);
        throw e;
      }
      try {
        const end = range ? range.end + 1 : (await fh.stat()).size;
        return fileReader(fh, range?.start ?? 0, end);
      } catch (e) {
        await fh.close();
        throw e;
      }
    },

    async *list() {
      for (const top of [blobsDir(root), uploadsDir(root), tmpDir(root)]) {
        for (const entry of await readdir(top, { recursive: true, withFileTypes: true })) {
          if (!entry.isDirectory()) yield relative(root, join(entry.parentPath, entry.name));
        }
      }
    },

    async ping() {
      const probe = join(tmpDir(root), `ready-${process.pid}-${randomBytes(4).toString('hex')}`);
      await writeFile(probe, 'ok');
      await unlink(probe);
    },
  };
  return withStorageErrors(driver);
}

/** A write into an area that is gone, or past the largest file the storage takes, in domain terms. */
async function failWrite(uploadId: string, e: unknown): Promise<never> {
  if (code(e) === 'ENOENT') throw new DomainError('precondition_failed', 'upload_area_gone', `upload ${uploadId} ended while a part was being written`);
  if (code(e) === 'EFBIG') throw new DomainError('payload_too_large', 'part_too_large', 'the part exceeds the largest file this storage accepts');
  throw storageFailure(e);
}

const STORAGE_UNAVAILABLE = new Set(['EIO', 'EROFS', 'EACCES', 'EPERM', 'EDQUOT', 'EMFILE', 'ENFILE', 'ENOTDIR', 'ESTALE']);

/**
 * A filesystem failure in domain terms: a full disk is `insufficient_storage` (retrying will not
 * help until space is freed), other storage faults are `unavailable`; `DomainError`s, aborts and
 * anything else pass through unchanged.
 */
function storageFailure(e: unknown): unknown {
  const c = code(e);
  if (isDomainError(e) || !c) return e;
  if (c === 'ENOSPC') return new DomainError('insufficient_storage', 'storage_full', 'the blob storage is full; free space, then retry', { cause: e });
  if (STORAGE_UNAVAILABLE.has(c)) return new DomainError('unavailable', 'storage_unavailable', `blob storage failed (${c}); retry later`, { cause: e });
  return e;
}

const withStorageErrors = (driver: ByteDriver): ByteDriver =>
  decorate(driver, async (_method, call) => {
    try {
      return await call();
    } catch (e) {
      throw storageFailure(e);
    }
  });
