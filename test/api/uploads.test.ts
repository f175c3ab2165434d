import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import { random, sha256, split } from '../helpers/bytes.ts';
import { testStorage } from '../helpers/storage.ts';
import { useServer } from '../helpers/suite.ts';
import { uploadBytes, waitForUpload } from '../helpers/uploads.ts';

const octets = { 'content-type': 'application/octet-stream' };

describe('uploads', () => {
  const ctx = useServer();

  const begin = async (bytes: Buffer, extra: Record<string, unknown> = {}) => {
    const res = await ctx.api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length, ...extra });
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return res;
  };
  const putPart = (id: string, n: number, body: Buffer) => ctx.api.put(`/v1/uploads/${id}/parts/${n}`, { body, headers: octets });

  it('uploads 64 MiB in 3 parts, verifies it and serves it whole and by ranges', async () => {
    const bytes = random(64 * 1024 * 1024);
    const chunks = split(bytes, 3);
    const created = await begin(bytes, { media_type_hint: 'application/x-qemu-disk', filename_hint: 'disk.qcow2' });
    assert.equal(created.json.state, 'created');
    assert.equal(created.headers.get('location'), `/v1/uploads/${created.json.id}`);
    assert.equal(created.json.media_type_hint, 'application/x-qemu-disk');
    assert.ok(Date.parse(created.json.expires_at) > Date.now());
    const id = created.json.id as string;
    const listed = [];
    // Parts may arrive in any order and in parallel.
    const puts = await Promise.all([2, 0, 1].map(async (i) => [i, await putPart(id, i + 1, chunks[i]!)] as const));
    for (const [i, put] of puts.sort((a, b) => a[0] - b[0])) {
      assert.equal(put.status, 200);
      assert.deepEqual(put.json, { upload_id: id, part_number: i + 1, etag: crc32(chunks[i]!).toString(16).padStart(8, '0'), size_bytes: chunks[i]!.length });
      listed.push({ number: i + 1, etag: put.json.etag, size_bytes: put.json.size_bytes });
    }
    const uploading = await ctx.api.get(`/v1/uploads/${id}`, { token: null });
    assert.equal(uploading.json.state, 'uploading');
    assert.deepEqual(
      uploading.json.received_parts.map((p: { part_number: number }) => p.part_number),
      [1, 2, 3],
    );
    const completed = await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: listed });
    assert.equal(completed.status, 200);
    assert.ok(['completed', 'ingesting', 'ready'].includes(completed.json.state));
    const ready = await waitForUpload(ctx.api, id);
    assert.equal(ready.state, 'ready');
    assert.equal(ready.received_parts, undefined, 'parts are gone once the blob is trusted');
    assert.deepEqual(await (await testStorage(ctx.server.dataDir)).uploadAreas(), [], 'the session area was removed');

    const whole = await ctx.api.get(`/v1/blobs/${sha256(bytes)}`, { token: null });
    assert.equal(whole.status, 200);
    assert.ok(whole.bytes.equals(bytes));
    for (const [range, start, end] of [
      ['bytes=0-0', 0, 0],
      ['bytes=1000-2000000', 1000, 2000000],
      [`bytes=${bytes.length - 5}-`, bytes.length - 5, bytes.length - 1],
      ['bytes=-1048576', bytes.length - 1048576, bytes.length - 1],
    ] as const) {
      const part = await ctx.api.get(`/v1/blobs/${sha256(bytes)}`, { token: null, headers: { range } });
      assert.equal(part.status, 206, range);
      assert.equal(part.headers.get('content-range'), `bytes ${start}-${end}/${bytes.length}`);
      assert.ok(part.bytes.equals(bytes.subarray(start, end + 1)), range);
    }

    const again = await ctx.api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
    assert.equal(again.status, 200, 'a trusted digest short-circuits');
    assert.equal(again.json.state, 'ready');
    assert.equal(again.json.id, id, 'the session that made it ready is returned');
    const conflicting = await ctx.api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length + 1 });
    assert.equal(conflicting.status, 412);
    assert.match(conflicting.json.detail, /trusted blob of 67108864 bytes/);
  });

  it('writes the parts of a declared fixed size in place, and verifies them without a copy', async () => {
    const bytes = random(2 * 1024 * 1024 + 12345);
    const partSize = 1024 * 1024;
    const created = await begin(bytes, { part_size_bytes: partSize });
    const id = created.json.id as string;
    assert.equal(created.json.part_size_bytes, partSize);
    const chunk = (n: number) => bytes.subarray((n - 1) * partSize, n * partSize);
    const wrongSize = await putPart(id, 1, random(partSize - 1));
    assert.equal(wrongSize.status, 400);
    assert.match(wrongSize.json.detail, /must have exactly 1048576 bytes, not 1048575/);
    const beyond = await putPart(id, 4, random(10));
    assert.equal(beyond.status, 400);
    assert.match(beyond.json.detail, /has 3 parts of 1048576 bytes; there is no part 4/);
    const puts = await Promise.all([3, 1, 2].map((n) => putPart(id, n, chunk(n))));
    const listed = puts.map((p) => ({ number: p.json.part_number, etag: p.json.etag, size_bytes: p.json.size_bytes })).sort((a, b) => a.number - b.number);
    const storage = await testStorage(ctx.server.dataDir);
    // An object store cannot write at an offset: there each part is an object of its own.
    const held = await storage.uploadArea(id);
    if (storage.kind === 'fs') assert.deepEqual(held, ['assembly'], 'one file, no separate parts');
    else assert.equal(held.length, 3, 'one object per part');
    const partial = await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: listed.slice(0, 2) });
    assert.equal(partial.status, 400);
    assert.equal((await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: listed })).status, 200);
    assert.equal((await waitForUpload(ctx.api, id)).state, 'ready');
    assert.ok((await ctx.api.get(`/v1/blobs/${sha256(bytes)}`)).bytes.equals(bytes));
  });

  it('refuses a declared part size it cannot honour', async () => {
    const tooMany = await ctx.api.post('/v1/uploads', { expected_digest: sha256(random(4)), expected_size_bytes: 10_001, part_size_bytes: 1 });
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.json.detail, /more than 10000 parts/);
    const zero = await ctx.api.post('/v1/uploads', { expected_digest: sha256(random(4)), expected_size_bytes: 10, part_size_bytes: 0 });
    assert.equal(zero.status, 400);
  });

  it('replaces a re-sent part (last write wins) and completes with its current etag', async () => {
    const bytes = random(20_000);
    const { json } = await begin(bytes);
    const wrong = await putPart(json.id, 1, random(20_000));
    const right = await putPart(json.id, 1, bytes);
    assert.notEqual(wrong.json.etag, right.json.etag);
    const stale = await ctx.api.post(`/v1/uploads/${json.id}/complete`, { parts: [{ number: 1, etag: wrong.json.etag, size_bytes: 20_000 }] });
    assert.equal(stale.status, 412);
    assert.match(stale.json.detail, /does not match the part the server holds/);
    const ok = await ctx.api.post(`/v1/uploads/${json.id}/complete`, { parts: [{ number: 1, etag: right.json.etag, size_bytes: 20_000 }] });
    assert.equal(ok.status, 200);
    assert.equal((await waitForUpload(ctx.api, json.id)).state, 'ready');
    assert.ok(!(await (await testStorage(ctx.server.dataDir)).uploadAreas()).includes(json.id), 'replaced and final parts are removed');
  });

  it('treats complete as idempotent once the session moved on', async () => {
    const bytes = random(1000);
    const { json } = await begin(bytes);
    const put = await putPart(json.id, 1, bytes);
    const list = { parts: [{ number: 1, etag: put.json.etag, size_bytes: 1000 }] };
    assert.equal((await ctx.api.post(`/v1/uploads/${json.id}/complete`, list)).status, 200);
    await waitForUpload(ctx.api, json.id);
    const again = await ctx.api.post(`/v1/uploads/${json.id}/complete`, list);
    assert.equal(again.status, 200);
    assert.equal(again.json.state, 'ready');
  });

  it('fails a session whose bytes do not match the expected digest, and keeps nothing', async () => {
    const claimed = random(5000);
    const { json } = await begin(claimed);
    const other = random(5000);
    const put = await putPart(json.id, 1, other);
    await ctx.api.post(`/v1/uploads/${json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: 5000 }] });
    const failed = await waitForUpload(ctx.api, json.id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.failure_reason ?? '', new RegExp(`digest ${sha256(other)}, not the expected ${sha256(claimed)}`));
    assert.equal((await ctx.api.get(`/v1/blobs/${sha256(claimed)}`)).status, 404);
    assert.equal((await ctx.api.get(`/v1/blobs/${sha256(other)}`)).status, 404);
    const complete = await ctx.api.post(`/v1/uploads/${json.id}/complete`, { parts: [{ number: 1, etag: put.json.etag, size_bytes: 5000 }] });
    assert.equal(complete.status, 200, 'failed is terminal: complete reports it');
    assert.equal(complete.json.state, 'failed');
    assert.equal((await putPart(json.id, 1, claimed)).status, 412);
    // Recovery: a new session for the same digest.
    assert.equal((await uploadBytes(ctx.api, claimed)).session.state, 'ready');
  });

  it('aborts open sessions idempotently, and refuses to abort one that completed', async () => {
    const bytes = random(100);
    const { json } = await begin(bytes);
    await putPart(json.id, 1, bytes);
    const aborted = await ctx.api.post(`/v1/uploads/${json.id}/abort`);
    assert.equal(aborted.status, 200);
    assert.equal(aborted.json.state, 'aborted');
    assert.equal(aborted.json.failure_reason, 'aborted by the client');
    assert.equal((await ctx.api.post(`/v1/uploads/${json.id}/abort`)).status, 200);
    assert.equal((await putPart(json.id, 1, bytes)).status, 412);
    assert.equal((await ctx.api.post(`/v1/uploads/${json.id}/complete`, { parts: [{ number: 1, etag: 'x', size_bytes: 100 }] })).status, 412);
    const done = await uploadBytes(ctx.api, random(10));
    const refused = await ctx.api.post(`/v1/uploads/${done.session.id}/abort`);
    assert.equal(refused.status, 412);
    assert.match(refused.json.detail, /is ready; only created or uploading sessions can be aborted/);
  });

  // Expiry is tested with a moved clock, in time.test.ts.

  it('ends two sessions uploading one digest at the same time with one blob', async () => {
    const bytes = random(3_000_000);
    const [a, b] = await Promise.all([begin(bytes), begin(bytes)]);
    const parts = await Promise.all([a, b].map((s) => putPart(s.json.id, 1, bytes)));
    await Promise.all(
      [a, b].map((s, i) => ctx.api.post(`/v1/uploads/${s.json.id}/complete`, { parts: [{ number: 1, etag: parts[i]!.json.etag, size_bytes: bytes.length }] })),
    );
    const states = await Promise.all([a, b].map((s) => waitForUpload(ctx.api, s.json.id)));
    assert.deepEqual(states.map((s) => s.state), ['ready', 'ready']);
    const hex = sha256(bytes).slice(7);
    // Other tests' blobs are there too; this one once.
    assert.deepEqual((await (await testStorage(ctx.server.dataDir)).blobs()).filter((e) => e === hex), [hex]);
    assert.ok((await ctx.api.get(`/v1/blobs/${sha256(bytes)}`)).bytes.equals(bytes));
  });

  it('accepts an empty blob', async () => {
    const { session, digest } = await uploadBytes(ctx.api, Buffer.alloc(0));
    assert.equal(session.state, 'ready');
    const res = await ctx.api.get(`/v1/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.bytes.length, 0);
  });
});
