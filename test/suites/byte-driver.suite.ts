import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { createCas, type Cas, type StoredPart } from '../../src/blobs/cas.ts';
import type { BlobReader, ByteDriver } from '../../src/blobs/driver.ts';
import type { Digest } from '../../src/domain/digest.ts';
import { neverAborted, random, sha256, streamOf } from '../helpers/bytes.ts';
import { rejectsWith } from './common.ts';

export interface ByteDriverFixture {
  driver: ByteDriver;
  cleanup(): Promise<void>;
}

export async function readAll(reader: BlobReader, chunk = 1000): Promise<Buffer> {
  const out: Buffer[] = [];
  const buffer = Buffer.alloc(chunk);
  for (let n; (n = await reader.read(buffer)) > 0; ) out.push(Buffer.from(buffer.subarray(0, n)));
  await reader.close();
  return Buffer.concat(out);
}

const listAll = async (driver: ByteDriver) => {
  const keys: string[] = [];
  for await (const key of driver.list()) keys.push(key);
  return keys.sort();
};

/**
 * The `ByteDriver` contract (blobs/driver.ts), exercised through the CAS that every caller uses,
 * run by every driver unchanged. After each case the driver holds nothing but the blobs the case
 * committed: every failed write, abandoned stage and discarded area is gone (`list`).
 */
export function describeByteDriver(name: string, makeFixture: () => Promise<ByteDriverFixture>): void {
  describe(`ByteDriver conformance: ${name}`, () => {
    let f: ByteDriverFixture;
    let cas: Cas;
    let committed: Set<Digest>;
    let uploads: Set<string>;
    beforeEach(async () => {
      f = await makeFixture();
      cas = createCas(f.driver);
      committed = new Set();
      uploads = new Set();
    });
    afterEach(async () => {
      for (const id of uploads) await cas.discardUpload(id);
      const left = await listAll(f.driver);
      assert.equal(left.length, committed.size, `only the committed blobs may remain, found ${JSON.stringify(left)}`);
      for (const digest of committed) assert.ok(left.some((k) => k.includes(digest.slice(7))), `${digest} is listed`);
      await f.cleanup();
    });

    const area = () => {
      const id = randomUUID();
      uploads.add(id);
      return id;
    };
    const put = (uploadId: string, bytes: Buffer, opts: { offset?: number; maxBytes?: number; exactSize?: number } = {}) =>
      cas.writePart({ uploadId, body: streamOf(bytes), maxBytes: opts.maxBytes ?? 1 << 30, offset: opts.offset, exactSize: opts.exactSize, signal: neverAborted() });
    const commit = async (uploadId: string, parts: readonly StoredPart[], expected?: { digest: Digest; size?: number }) => {
      const result = await cas.commit({ uploadId, parts, expected, signal: neverAborted() });
      committed.add(result.digest);
      return result;
    };

    it('stores a part under a key of its own and reports its size and CRC-32', async () => {
      const bytes = random(300_000);
      const part = await put(area(), bytes);
      assert.equal(part.size, bytes.length);
      assert.equal(part.crc32, crc32(bytes).toString(16).padStart(8, '0'));
      assert.equal(part.offset, undefined);
      assert.ok(part.key.length > 0);
    });

    it('gives every write its own key', async () => {
      const id = area();
      const [a, b] = await Promise.all([put(id, random(1000)), put(id, random(1000))]);
      assert.notEqual(a.key, b.key);
    });

    it('keeps nothing of a part over maxBytes, of a wrong exact size, or whose body fails or is aborted', async () => {
      const id = area();
      await rejectsWith(put(id, random(5000), { maxBytes: 4999 }), 'payload_too_large');
      await rejectsWith(put(id, random(5000), { exactSize: 5001 }), 'invalid', 'part_size_mismatch');
      const failing = new Readable({ read() {} });
      const written = cas.writePart({ uploadId: id, body: failing, maxBytes: 1 << 20, signal: neverAborted() });
      failing.push(random(1000));
      setTimeout(() => failing.destroy(new Error('connection reset')), 20);
      await assert.rejects(written);
      const abort = new AbortController();
      const endless = new Readable({ read() {} });
      const aborted = cas.writePart({ uploadId: id, body: endless, maxBytes: 1 << 20, signal: abort.signal });
      endless.push(random(1000));
      setTimeout(() => abort.abort(), 20);
      await assert.rejects(aborted);
      assert.deepEqual((await listAll(f.driver)).filter((k) => k.includes(id)), [], 'no bytes of a failed write remain');
    });

    it('commits parts of any sizes in order into one verified blob, readable by range', async () => {
      const id = area();
      const chunks = [random(2_500_000), random(10), random(1_300_000)];
      const whole = Buffer.concat(chunks);
      const parts = [];
      for (const c of chunks) parts.push(await put(id, c));
      const digest = sha256(whole);
      assert.equal(await cas.stat(digest), undefined);
      assert.equal((await commit(id, parts, { digest, size: whole.length })).outcome, 'created');
      assert.deepEqual(await cas.stat(digest), { size: whole.length });
      assert.ok((await readAll(await cas.open(digest), 65536)).equals(whole));
      assert.ok((await readAll(await cas.open(digest, { start: 2_499_990, end: 2_500_015 }), 7)).equals(whole.subarray(2_499_990, 2_500_016)));
      assert.ok((await readAll(await cas.open(digest, { start: whole.length - 1, end: whole.length - 1 }))).equals(whole.subarray(-1)));
    });

    it('learns the digest from the bytes when none is expected', async () => {
      const id = area();
      const bytes = random(70_000);
      const result = await commit(id, [await put(id, bytes.subarray(0, 30_000)), await put(id, bytes.subarray(30_000))]);
      assert.deepEqual({ digest: result.digest, size: result.size }, { digest: sha256(bytes), size: bytes.length });
    });

    it('commits parts written in place, in any order, and parts that broke the pattern', async () => {
      const id = area();
      const whole = random(2_500_000);
      const slot = 1_000_000;
      const chunk = (n: number) => whole.subarray((n - 1) * slot, n * slot);
      const placed = await Promise.all([3, 1, 2].map(async (n) => [n, await put(id, chunk(n), { offset: (n - 1) * slot })] as const));
      const parts = placed.sort((a, b) => a[0] - b[0]).map(([n, p]) => {
        assert.equal(p.offset, (n - 1) * slot);
        assert.equal(p.crc32, crc32(chunk(n)).toString(16).padStart(8, '0'));
        return p;
      });
      // A re-send of part 2 kept apart replaces the one in place.
      const resent = await put(id, chunk(2));
      assert.equal((await commit(id, [parts[0]!, resent, parts[2]!], { digest: sha256(whole), size: whole.length })).outcome, 'created');
      assert.ok((await readAll(await cas.open(sha256(whole)), 1 << 20)).equals(whole));
    });

    it('commits parts in place at offsets the blob does not have them at (copying them)', async () => {
      const id = area();
      const first = random(100_000);
      const second = random(50_000);
      // The second part went in place at 200 000 (as part 3 of 100 000-byte slots would), but the blob has it at 100 000.
      const a = await put(id, first, { offset: 0 });
      const b = await put(id, second, { offset: 200_000 });
      const whole = Buffer.concat([first, second]);
      assert.equal((await commit(id, [a, b], { digest: sha256(whole), size: whole.length })).outcome, 'created');
      assert.ok((await readAll(await cas.open(sha256(whole)), 1 << 16)).equals(whole));
    });

    it('stores an empty blob', async () => {
      const id = area();
      const digest = sha256(Buffer.alloc(0));
      await commit(id, [await put(id, Buffer.alloc(0))], { digest, size: 0 });
      assert.deepEqual(await cas.stat(digest), { size: 0 });
      assert.equal((await readAll(await cas.open(digest))).length, 0);
    });

    for (const single of [true, false]) {
      it(`never makes mismatching bytes visible (${single ? 'one part' : 'several parts'}); the parts stay for a retry`, async () => {
        const id = area();
        const chunks = single ? [random(5000)] : [random(5000), random(3000)];
        const parts = [];
        for (const c of chunks) parts.push(await put(id, c));
        const claimed = sha256(random(8000));
        const size = chunks.reduce((n, c) => n + c.length, 0);
        await rejectsWith(cas.commit({ uploadId: id, parts, expected: { digest: claimed, size }, signal: neverAborted() }), 'invalid', 'digest_mismatch');
        assert.equal(await cas.stat(claimed), undefined);
        const real = sha256(Buffer.concat(chunks));
        await rejectsWith(cas.commit({ uploadId: id, parts, expected: { digest: real, size: size + 1 }, signal: neverAborted() }), 'invalid', 'size_mismatch');
        assert.equal(await cas.stat(real), undefined);
        assert.equal((await commit(id, parts, { digest: real, size })).outcome, 'created');
      });
    }

    it('answers `existed` for a digest it holds, without reading the parts', async () => {
      const id = area();
      const bytes = random(4096);
      const digest = sha256(bytes);
      await commit(id, [await put(id, bytes)], { digest, size: bytes.length });
      const gone = { key: 'b'.repeat(32), size: bytes.length, crc32: '00000000' };
      assert.equal((await commit(area(), [gone], { digest, size: bytes.length })).outcome, 'existed');
      await rejectsWith(cas.commit({ uploadId: area(), parts: [], expected: { digest, size: 1 }, signal: neverAborted() }), 'invalid', 'size_mismatch');
    });

    it('answers part_missing when a part is gone, and keeps nothing', async () => {
      await rejectsWith(cas.commit({ uploadId: area(), parts: [{ key: 'c'.repeat(32), size: 10 }, { key: 'd'.repeat(32), size: 10 }], signal: neverAborted() }), 'unavailable', 'part_missing');
    });

    it('ends racing commits of one digest with exactly one created and one intact blob', async () => {
      const bytes = random(3_000_000);
      const digest = sha256(bytes);
      const sessions = await Promise.all(
        [0, 1, 2, 3].map(async () => {
          const id = area();
          return { id, parts: [await put(id, bytes.subarray(0, 1_000_000)), await put(id, bytes.subarray(1_000_000))] };
        }),
      );
      // Past the dedup check at once: stage all, then commit all, as racing instances would.
      const outcomes = await Promise.all(sessions.map((s) => commit(s.id, s.parts)));
      assert.equal(outcomes.filter((o) => o.outcome === 'created').length, 1, JSON.stringify(outcomes.map((o) => o.outcome)));
      assert.ok((await readAll(await cas.open(digest), 1 << 20)).equals(bytes));
    });

    it('answers not_found for a blob it does not hold', async () => {
      await rejectsWith(cas.open(sha256(random(10))), 'not_found');
      assert.equal(await cas.stat(sha256(random(10))), undefined);
    });

    it('deletes parts and discards areas idempotently', async () => {
      const id = area();
      const part = await put(id, random(100));
      await cas.deletePart(id, part);
      await cas.deletePart(id, part);
      await cas.discardUpload(id);
      await cas.discardUpload(id);
      await cas.discardUpload(randomUUID());
    });

    it('refuses ids and keys that could escape its area', async () => {
      for (const uploadId of ['../../etc', 'a/b', '', 'not-a-uuid']) {
        await rejectsWith(put(uploadId, random(1)), 'invalid');
        await rejectsWith(cas.discardUpload(uploadId), 'invalid');
      }
      await rejectsWith(cas.deletePart(randomUUID(), { key: '../x', size: 1 }), 'invalid');
      await rejectsWith(cas.open('sha256:../../etc/passwd' as never), 'invalid');
    });

    it('tells its free room and answers ping when writable', async () => {
      assert.ok((await f.driver.room()) > 0);
      await cas.ping();
    });
  });
}
