import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import type { ApiClient } from '../helpers/client.ts';
import { heldRequest } from '../helpers/raw-http.ts';
import { useServer } from '../helpers/suite.ts';
import { waitForUpload } from '../helpers/uploads.ts';

const MiB = 1024 * 1024;
const octets = { 'content-type': 'application/octet-stream' };

/** Begins an upload of `bytes` in parts of `partSize`, declaring the part size or not, and sends every part. */
async function sendAllParts(api: ApiClient, bytes: Buffer, partSize: number, declare: boolean) {
  const begin = await api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length, ...(declare && { part_size_bytes: partSize }) });
  assert.equal(begin.status, 201);
  const listed = [];
  for (let n = 1; (n - 1) * partSize < bytes.length; n++) {
    const put = await api.put(`/v1/uploads/${begin.json.id}/parts/${n}`, { body: bytes.subarray((n - 1) * partSize, n * partSize), headers: octets });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    listed.push({ number: n, etag: put.json.etag, size_bytes: put.json.size_bytes });
  }
  return { id: begin.json.id as string, digest: sha256(bytes), listed };
}

describe('verified bytes never change: part writes racing complete and refused re-sends', () => {
  const ctx = useServer();

  for (const declare of [true, false]) {
    const path = declare ? 'declared part size' : 'contract path (no part size)';

    it(`a re-send still streaming when complete is accepted cannot touch the verified blob (${path})`, async () => {
      const bytes = random(2 * MiB);
      const { id, digest, listed } = await sendAllParts(ctx.api, bytes, MiB, declare);
      // A re-send of part 2 that starts identical to the real part, then stalls.
      const resend = heldRequest(`${ctx.server.url}/v1/uploads/${id}/parts/2`, {
        method: 'PUT',
        headers: { ...octets, authorization: `Bearer ${ctx.server.token}`, 'content-length': MiB },
      });
      await resend.write(bytes.subarray(MiB, MiB + MiB / 2));
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: listed })).status, 200);
      assert.equal((await waitForUpload(ctx.api, id)).state, 'ready');
      // The stalled writer wakes up and sends different bytes.
      await resend.write(random(MiB / 2)).catch(() => {});
      resend.end();
      const answer = await resend.response;
      if ('status' in answer) assert.ok(answer.status === 412 || answer.status === 400, `the late part is refused (${answer.status})`);
      await new Promise((r) => setTimeout(r, 300));
      const served = await ctx.api.get(`/v1/blobs/${digest}`);
      assert.equal(served.status, 200);
      assert.equal(sha256(served.bytes), digest, 'the served bytes still hash to the digest in their ETag');
      assert.ok(served.bytes.equals(bytes));
    });

    it(`a re-send refused for its size leaves the held part intact (${path})`, async () => {
      const bytes = random(2 * MiB);
      const { id, digest, listed } = await sendAllParts(ctx.api, bytes, MiB, declare);
      // Chunked, so the limit is found only while streaming: 1 MiB of other bytes, then 10 more.
      const resend = heldRequest(`${ctx.server.url}/v1/uploads/${id}/parts/1`, {
        method: 'PUT',
        headers: { ...octets, authorization: `Bearer ${ctx.server.token}`, 'transfer-encoding': 'chunked' },
      });
      await resend.write(random(MiB));
      await resend.write(random(10)).catch(() => {});
      resend.end();
      const answer = await resend.response;
      assert.ok('status' in answer && answer.status === 413, `refused with 413: ${JSON.stringify(answer)}`);
      const session = (await ctx.api.get(`/v1/uploads/${id}`)).json;
      const held = session.received_parts.map((p: { part_number: number; etag: string; size_bytes: number }) => ({ number: p.part_number, etag: p.etag, size_bytes: p.size_bytes }));
      assert.deepEqual(held, listed, 'the server still lists the parts it held');
      assert.equal((await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: held })).status, 200);
      const done = await waitForUpload(ctx.api, id);
      assert.equal(done.state, 'ready', done.failure_reason);
      assert.ok((await ctx.api.get(`/v1/blobs/${digest}`)).bytes.equals(bytes));
    });

    it(`a re-sent part replaces the held one, in any order (${path})`, async () => {
      const bytes = random(3 * MiB + 5);
      const { id, digest, listed } = await sendAllParts(ctx.api, bytes, MiB, declare);
      // Part 2 re-sent twice (other bytes first, then the right ones), part 1 once more.
      await ctx.api.put(`/v1/uploads/${id}/parts/2`, { body: random(MiB), headers: octets });
      const again = await ctx.api.put(`/v1/uploads/${id}/parts/2`, { body: bytes.subarray(MiB, 2 * MiB), headers: octets });
      const first = await ctx.api.put(`/v1/uploads/${id}/parts/1`, { body: bytes.subarray(0, MiB), headers: octets });
      assert.equal(again.json.etag, listed[1]!.etag);
      assert.equal(first.json.etag, listed[0]!.etag);
      assert.equal((await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: listed })).status, 200);
      assert.equal((await waitForUpload(ctx.api, id)).state, 'ready');
      assert.ok((await ctx.api.get(`/v1/blobs/${digest}`)).bytes.equals(bytes));
    });
  }
});
