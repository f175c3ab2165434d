import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createFsBlobStore } from '../../src/blobs/fs/fs-blob-store.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { describeBlobStore } from '../suites/blob-store.suite.ts';

async function tempFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && (e.name.endsWith('.tmp') || e.name.startsWith('ready-'))).map((e) => join(e.parentPath, e.name));
}

describeBlobStore('filesystem', async () => {
  const root = await makeDataDir();
  return { store: await createFsBlobStore({ root }), leftovers: () => tempFiles(root), cleanup: () => removeDir(root) };
});
