import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { PLACED_PART_KEY, type BlobReader, type BlobStore } from '../../src/blobs/blob-store.ts';
import { neverAborted, random, sha256, streamOf } from '../helpers/bytes.ts';
import { rejectsWith } from './common.ts';

export interface BlobStoreFixture {
  store: BlobStore;
  /** Temporary files (promotions in progress) anywhere in the store; must be none between operations. */
  leftovers(): Promise<string[]>;
  cleanup(): Promise<void>;
}

async function readAll(reader: BlobReader, chunk = 1000): Promise<Buffer> {
  const out: Buffer[] = [];
  const buffer = Buffer.alloc(chunk);
  for (let n; (n = await reader.read(buffer)) > 0; ) out.push(Buffer.from(buffer.subarray(0, n)));
  await reader.close();
  return Buffer.concat(out);
}


/**
 * The `BlobStore` contract (blobs/blob-store.ts), run by every implementation unchanged.
 */
export function describeBlobStore(name: string, makeFixture: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let f: BlobStoreFixture;
    let store: BlobStore;
    beforeEach(async () => {
      f = await makeFixture();
      store = f.store;
    });
    afterEach(async () => {
      assert.deepEqual(await f.leftovers(), [], 'no temporary files may remain');
      await f.cleanup();
    });

    const put = (uploadId: string, partNumber: number, bytes: Buffer, maxBytes = 1 << 30) =>
      store.putPart({ uploadId, partNumber, body: streamOf(bytes), maxBytes, signal: neverAborted() });

    it('stores a part and reports its size and CRC-32', async () => {
      const bytes = random(300_000);
      const part = await put(randomUUID(), 1, bytes);
      assert.equal(part.size, bytes.length);
      assert.equal(part.crc32, crc32(bytes).toString(16).padStart(8, '0'));
      assert.match(part.key, /^[0-9a-f]{16,64}$/);
    });

    it('gives every write of the same part number its own key', async () => {
      const id = randomUUID();
      const [a, b] = await Promise.all([put(id, 1, random(1000)), put(id, 1, random(1000))]);
      assert.notEqual(a.key, b.key);
    });

    it('rejects a part over maxBytes with payload_too_large and keeps nothing', async () => {
      const id = randomUUID();
      await rejectsWith(put(id, 1, random(5000), 4999), 'payload_too_large');
      await store.discard(id);
    });

    it('discards a part whose body fails or is aborted', async () => {
      const id = randomUUID();
      const failing = new Readable({ read() {} });
      const written = store.putPart({ uploadId: id, partNumber: 1, body: failing, maxBytes: 1 << 20, signal: neverAborted() });
      failing.push(random(1000));
      setTimeout(() => failing.destroy(new Error('connection reset')), 20);
      await assert.rejects(written);
      const abort = new AbortController();
      const endless = new Readable({ read() {} });
      const aborted = store.putPart({ uploadId: id, partNumber: 2, body: endless, maxBytes: 1 << 20, signal: abort.signal });
      endless.push(random(1000));
      setTimeout(() => abort.abort(), 20);
      await assert.rejects(aborted);
      // Both failed writes left nothing: promoting the empty area finds no parts at all.
      await rejectsWith(store.promote({ placed: false, uploadId: id, parts: [{ number: 1, key: 'a'.repeat(32) }], digest: sha256(Buffer.alloc(0)), size: 0, signal: neverAborted() }), 'unavailable', 'part_missing');
    });

    it('promotes several parts in order into one verified blob, readable by range', async () => {
      const id = randomUUID();
      const chunks = [random(2_500_000), random(10), random(1_300_000)];
      const whole = Buffer.concat(chunks);
      const parts = [];
      for (const [i, c] of chunks.entries()) parts.push({ number: i + 1, key: (await put(id, i + 1, c)).key });
      const digest = sha256(whole);
      assert.equal(await store.stat(digest), undefined);
      assert.equal(await store.promote({ placed: false, uploadId: id, parts, digest, size: whole.length, signal: neverAborted() }), 'created');
      assert.deepEqual(await store.stat(digest), { size: whole.length });
      assert.ok((await readAll(await store.open(digest), 65536)).equals(whole));
      assert.ok((await readAll(await store.open(digest, { start: 2_499_990, end: 2_500_015 }), 7)).equals(whole.subarray(2_499_990, 2_500_016)));
      assert.ok((await readAll(await store.open(digest, { start: whole.length - 1, end: whole.length - 1 }))).equals(whole.subarray(-1)));
      await store.discard(id);
    });

    it('promotes a single part', async () => {
      const id = randomUUID();
      const bytes = random(1_000_001);
      const part = await put(id, 7, bytes);
      const digest = sha256(bytes);
      assert.equal(await store.promote({ placed: false, uploadId: id, parts: [{ number: 7, key: part.key }], digest, size: bytes.length, signal: neverAborted() }), 'created');
      assert.ok((await readAll(await store.open(digest), 1 << 20)).equals(bytes));
      await store.discard(id);
    });

    it('writes placed parts into one assembly, in any order, and promotes it without a copy', async () => {
      const id = randomUUID();
      const whole = random(2_500_000);
      const size = 1_000_000;
      const place = (n: number) => ({ offset: (n - 1) * size, size: Math.min(size, whole.length - (n - 1) * size) });
      const chunk = (n: number) => whole.subarray(place(n).offset, place(n).offset + place(n).size);
      const putPlaced = (n: number, bytes: Buffer) => store.putPart({ uploadId: id, partNumber: n, body: streamOf(bytes), maxBytes: 1 << 30, placement: place(n), signal: neverAborted() });
      const parts = await Promise.all([3, 1, 2].map(async (n) => ({ n, stored: await putPlaced(n, chunk(n)) })));
      for (const { n, stored } of parts) {
        assert.equal(stored.size, place(n).size);
        assert.equal(stored.crc32, crc32(chunk(n)).toString(16).padStart(8, '0'));
        assert.equal(stored.key, PLACED_PART_KEY);
      }
      await rejectsWith(putPlaced(2, random(999_999)), 'invalid', 'part_size_mismatch');
      await rejectsWith(putPlaced(2, random(1_000_001)), 'payload_too_large');
      // A short or long re-send leaves part 2 wrong: the assembly no longer matches.
      await rejectsWith(store.promote({ placed: true, uploadId: id, parts: [], digest: sha256(whole), size: whole.length, signal: neverAborted() }), 'invalid', 'digest_mismatch');
      await putPlaced(2, chunk(2));
      await store.deletePart(id, { number: 2, key: PLACED_PART_KEY });
      assert.equal(await store.promote({ placed: true, uploadId: id, parts: [], digest: sha256(whole), size: whole.length, signal: neverAborted() }), 'created');
      assert.ok((await readAll(await store.open(sha256(whole)), 1 << 20)).equals(whole));
      await store.discard(id);
    });

    it('serialises concurrent writes of one placed part: the last one wins whole', async () => {
      const id = randomUUID();
      const first = random(500_000);
      const second = random(500_000);
      const placement = { offset: 0, size: 500_000 };
      await Promise.all(
        [first, second].map((bytes) => store.putPart({ uploadId: id, partNumber: 1, body: streamOf(...[0, 1, 2, 3, 4].map((i) => bytes.subarray(i * 100_000, (i + 1) * 100_000))), maxBytes: 1 << 20, placement, signal: neverAborted() })),
      );
      assert.equal(await store.promote({ placed: true, uploadId: id, parts: [], digest: sha256(second), size: second.length, signal: neverAborted() }), 'created');
      await store.discard(id);
    });

    it('stores an empty blob', async () => {
      const id = randomUUID();
      const part = await put(id, 1, Buffer.alloc(0));
      const digest = sha256(Buffer.alloc(0));
      await store.promote({ placed: false, uploadId: id, parts: [{ number: 1, key: part.key }], digest, size: 0, signal: neverAborted() });
      assert.deepEqual(await store.stat(digest), { size: 0 });
      assert.equal((await readAll(await store.open(digest))).length, 0);
      await store.discard(id);
    });

    for (const single of [true, false]) {
      it(`never makes mismatching bytes visible (${single ? 'one part' : 'several parts'}); the parts stay for a retry`, async () => {
        const id = randomUUID();
        const chunks = single ? [random(5000)] : [random(5000), random(3000)];
        const parts = [];
        for (const [i, c] of chunks.entries()) parts.push({ number: i + 1, key: (await put(id, i + 1, c)).key });
        const claimed = sha256(random(8000));
        const size = chunks.reduce((n, c) => n + c.length, 0);
        await rejectsWith(store.promote({ placed: false, uploadId: id, parts, digest: claimed, size, signal: neverAborted() }), 'invalid', 'digest_mismatch');
        assert.equal(await store.stat(claimed), undefined);
        const real = sha256(Buffer.concat(chunks));
        await rejectsWith(store.promote({ placed: false, uploadId: id, parts, digest: real, size: size + 1, signal: neverAborted() }), 'invalid', 'size_mismatch');
        assert.equal(await store.stat(real), undefined);
        assert.equal(await store.promote({ placed: false, uploadId: id, parts, digest: real, size, signal: neverAborted() }), 'created');
        await store.discard(id);
      });
    }

    it('reports `existed` for a digest it holds, without reading the parts', async () => {
      const id = randomUUID();
      const bytes = random(4096);
      const part = await put(id, 1, bytes);
      const digest = sha256(bytes);
      await store.promote({ placed: false, uploadId: id, parts: [{ number: 1, key: part.key }], digest, size: bytes.length, signal: neverAborted() });
      const other = randomUUID();
      assert.equal(await store.promote({ placed: false, uploadId: other, parts: [{ number: 1, key: 'b'.repeat(32) }], digest, size: bytes.length, signal: neverAborted() }), 'existed');
      await store.discard(id);
    });

    it('ends two concurrent promotions of one digest with one intact blob', async () => {
      const bytes = random(3_000_000);
      const digest = sha256(bytes);
      const sessions = await Promise.all(
        [randomUUID(), randomUUID()].map(async (id) => ({ id, parts: [{ number: 1, key: (await put(id, 1, bytes.subarray(0, 1_000_000))).key }, { number: 2, key: (await put(id, 2, bytes.subarray(1_000_000))).key }] })),
      );
      const outcomes = await Promise.all(sessions.map((s) => store.promote({ placed: false, uploadId: s.id, parts: s.parts, digest, size: bytes.length, signal: neverAborted() })));
      assert.ok(outcomes.includes('created'));
      assert.ok((await readAll(await store.open(digest), 1 << 20)).equals(bytes));
      await Promise.all(sessions.map((s) => store.discard(s.id)));
    });

    it('answers not_found for a blob it does not hold', async () => {
      await rejectsWith(store.open(sha256(random(10))), 'not_found');
      assert.equal(await store.stat(sha256(random(10))), undefined);
    });

    it('deletes and discards idempotently', async () => {
      const id = randomUUID();
      const bytes = random(100);
      const part = await put(id, 1, bytes);
      await store.deletePart(id, { number: 1, key: part.key });
      await store.deletePart(id, { number: 1, key: part.key });
      await store.discard(id);
      await store.discard(id);
      await store.discard(randomUUID());
      const digest = sha256(bytes);
      await store.delete(digest);
      const again = await put(id, 1, bytes);
      await store.promote({ placed: false, uploadId: id, parts: [{ number: 1, key: again.key }], digest, size: bytes.length, signal: neverAborted() });
      await store.delete(digest);
      await store.delete(digest);
      assert.equal(await store.stat(digest), undefined);
      await store.discard(id);
    });

    it('refuses ids that could escape its area', async () => {
      for (const uploadId of ['../../etc', 'a/b', '', 'not-a-uuid']) {
        await rejectsWith(put(uploadId, 1, random(1)), 'invalid');
        await rejectsWith(store.discard(uploadId), 'invalid');
      }
      await rejectsWith(store.deletePart(randomUUID(), { number: 1, key: '../x' }), 'invalid');
      await rejectsWith(put(randomUUID(), 0, random(1)), 'invalid');
      await rejectsWith(put(randomUUID(), 10_001, random(1)), 'invalid');
      await rejectsWith(store.open('sha256:../../etc/passwd' as never), 'invalid');
    });

    it('answers ping when writable', async () => {
      await store.ping();
    });
  });
}
