import assert from 'node:assert/strict';
import type { ApiClient } from './client.ts';
import { sha256, split } from './bytes.ts';

/** Polls an upload session until it reaches one of `states`. */
export async function waitForUpload(api: ApiClient, id: string, states: string[] = ['ready', 'failed'], timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api.get(`/v1/uploads/${id}`);
    assert.equal(res.status, 200);
    if (states.includes(res.json.state)) return res.json;
    if (Date.now() > deadline) throw new Error(`upload ${id} stuck in ${res.json.state}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The publishing flow's upload steps: begin, PUT each part, complete, wait for `ready`. */
export async function uploadBytes(api: ApiClient, bytes: Buffer, opts: { parts?: number } = {}) {
  const digest = sha256(bytes);
  const begin = await api.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: bytes.length });
  assert.ok(begin.status === 201 || begin.status === 200, `begin: ${begin.status} ${JSON.stringify(begin.json)}`);
  if (begin.json.state === 'ready') return { digest, session: begin.json };
  const listed = [];
  for (const [i, chunk] of split(bytes, opts.parts ?? 1).entries()) {
    const put = await api.put(`/v1/uploads/${begin.json.id}/parts/${i + 1}`, { body: chunk, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    listed.push({ number: i + 1, etag: put.json.etag, size_bytes: put.json.size_bytes });
  }
  const complete = await api.post(`/v1/uploads/${begin.json.id}/complete`, { parts: listed });
  assert.equal(complete.status, 200, JSON.stringify(complete.json));
  return { digest, session: await waitForUpload(api, begin.json.id, ['ready']) };
}
