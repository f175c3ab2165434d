import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { useApp } from '../helpers/app.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { apiClient } from '../helpers/client.ts';

const octets = { 'content-type': 'application/octet-stream' };

// Expiry, tested by moving the server's clock instead of sleeping through real time.
describe('time: upload sessions and API tokens expire', () => {
  const ctx = useApp({ env: { IMGSRV_MAX_TOKEN_LIFETIME: '86400' } });

  it('expires sessions that are not completed in time and removes their parts', async () => {
    const bytes = random(1000);
    const begin = await ctx.api.post('/v1/uploads', { expected_digest: sha256(bytes), expected_size_bytes: bytes.length });
    const id = begin.json.id as string;
    assert.equal((await ctx.api.put(`/v1/uploads/${id}/parts/1`, { body: bytes, headers: octets })).status, 200);
    assert.ok((await readdir(join(ctx.dataDir, 'uploads'))).includes(id));
    ctx.clock.advance(86_400_000 - 60_000);
    await ctx.app.sweep();
    assert.equal((await ctx.api.get(`/v1/uploads/${id}`)).json.state, 'uploading', 'not before its time');
    ctx.clock.advance(60_001);
    const late = await ctx.api.put(`/v1/uploads/${id}/parts/2`, { body: bytes, headers: octets });
    assert.equal(late.status, 412, 'a part after expiry is refused even before the sweep');
    assert.match(late.json.detail, /expired/);
    await ctx.app.sweep();
    const expired = (await ctx.api.get(`/v1/uploads/${id}`)).json;
    assert.equal(expired.state, 'aborted');
    assert.match(expired.failure_reason, /expired/);
    assert.ok(!(await readdir(join(ctx.dataDir, 'uploads'))).includes(id), 'its parts are removed');
    assert.equal((await ctx.api.post(`/v1/uploads/${id}/complete`, { parts: [{ number: 1, etag: 'x', size_bytes: 1000 }] })).status, 412);
  });

  it('refuses an API token once it expired, and the bootstrap token too after its lifetime', async () => {
    const principal = await ctx.api.post('/v1/auth/principals', { kind: 'service', display_name: 'ci' });
    await ctx.api.put(`/v1/auth/principals/${principal.json.id}/roles/content-writer`);
    const issued = await ctx.api.post(`/v1/auth/principals/${principal.json.id}/api-tokens`, { expires_at: new Date(ctx.clock.now().getTime() + 3600_000).toISOString() });
    assert.equal(issued.status, 201);
    const client = apiClient({ url: ctx.url, token: issued.json.plaintext });
    const begin = { expected_digest: sha256(random(8)), expected_size_bytes: 8 };
    assert.equal((await client.post('/v1/uploads', begin)).status, 201);
    ctx.clock.advance(3600_000);
    const res = await client.post('/v1/uploads', begin);
    assert.equal(res.status, 401);
    assert.match(res.json.detail, /expired/);
    assert.equal((await ctx.api.post('/v1/uploads', begin)).status, 201, 'the bootstrap token lives a year');
    ctx.clock.advance(366 * 86_400_000);
    assert.equal((await ctx.api.post('/v1/uploads', begin)).status, 401);
  });
});
