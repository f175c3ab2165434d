import { open, stat, type FileHandle } from 'node:fs/promises';
import type { BlobReader } from '../driver.ts';

/** The errno code of a filesystem error, if any. */
export const code = (e: unknown): string | undefined => (e as { code?: string } | null)?.code;

/** Reads [start, end) of an open file into caller buffers; closing closes the file. */
export function fileReader(fh: FileHandle, start: number, end: number): BlobReader {
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

export async function writeAll(fh: FileHandle, buffer: Uint8Array, length: number, position: number): Promise<void> {
  let written = 0;
  while (written < length) {
    const { bytesWritten } = await fh.write(buffer, written, length - written, position + written);
    written += bytesWritten;
  }
}

/** fsync of a directory, so that a name created or removed in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
}
