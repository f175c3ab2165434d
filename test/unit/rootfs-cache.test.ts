import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pruneRootfsCache } from '../../src/compose/rootfs.ts';

const hex = (n: number) => n.toString(16).padStart(64, '0');
const HOUR = 3600_000;

describe('rootfs cache pruning', () => {
  it('keeps the newest tarballs within the count, the age and the byte budget, and old temp files go', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgsrv-rootfs-cache-'));
    try {
      const now = Date.now();
      const put = async (name: string, bytes: number, ageMs: number) => {
        await writeFile(join(dir, name), Buffer.alloc(bytes));
        await utimes(join(dir, name), (now - ageMs) / 1000, (now - ageMs) / 1000);
      };
      for (let i = 1; i <= 5; i++) await put(`rootfs-${hex(i)}.tar.zst`, 1000, i * HOUR);
      await put(`rootfs-${hex(9)}.tar.zst`, 10, 8 * 24 * HOUR);
      await put(`.tmp-${hex(7)}-0000aaaa.tar.zst`, 10, 2 * HOUR);
      await put(`.tmp-${hex(8)}-0000bbbb.tar.zst`, 10, 60_000);
      await put('unrelated.txt', 10, 30 * 24 * HOUR);

      const pruned = await pruneRootfsCache({ cacheDir: dir, keep: 4, maxBytes: 2500, log: () => {} });
      assert.equal(pruned.length, 5);
      // Within 2500 bytes: the two newest; 5 is past the count, 9 past the age, the older temp file is dead.
      assert.deepEqual((await readdir(dir)).sort(), [`.tmp-${hex(8)}-0000bbbb.tar.zst`, `rootfs-${hex(1)}.tar.zst`, `rootfs-${hex(2)}.tar.zst`, 'unrelated.txt'].sort());

      // The newest stays even when it alone is over the budget.
      await put(`rootfs-${hex(10)}.tar.zst`, 5000, 0);
      await pruneRootfsCache({ cacheDir: dir, keep: 4, maxBytes: 2500, log: () => {} });
      assert.ok((await readdir(dir)).includes(`rootfs-${hex(10)}.tar.zst`));
      assert.ok(!(await readdir(dir)).includes(`rootfs-${hex(1)}.tar.zst`));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
