import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { random, sha256 } from '../helpers/bytes.ts';
import { useServer } from '../helpers/suite.ts';

/** `{"a":{"a":...}}` nested `depth` levels. */
const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

describe('every stored string has a maximum, JSON nesting is bounded, U+0000 is refused', () => {
  const ctx = useServer();

  it('refuses JSON nested deeper than the limit with 400 naming it, before any handler runs', async () => {
    const deep = `{"kind":"service","display_name":"deep","attributes":${nested(4200)}}`;
    const res = await ctx.api.request('POST', '/v1/auth/principals', { body: deep, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 400);
    assert.equal(res.json.code, 'json_too_deep');
    assert.match(res.json.detail, /nested more than 32 levels/);
    const ok = `{"kind":"service","display_name":"shallow","attributes":${nested(20)}}`;
    assert.equal((await ctx.api.request('POST', '/v1/auth/principals', { body: ok, headers: { 'content-type': 'application/json' } })).status, 201);
  });

  it('refuses over-long strings with 400 naming the field and its maximum', async () => {
    const digest = sha256(random(4));
    const cases: [string, unknown, RegExp][] = [
      ['/v1/uploads', { expected_digest: digest, expected_size_bytes: 4, filename_hint: 'f'.repeat(256) }, /filename_hint.*255/],
      ['/v1/uploads', { expected_digest: digest, expected_size_bytes: 4, media_type_hint: `a/${'b'.repeat(254)}` }, /media_type_hint.*255/],
      ['/v1/images', { name: 'long', display_name: 'd'.repeat(201) }, /display_name.*200/],
      ['/v1/images', { name: 'long', description: 'd'.repeat(4097) }, /description.*4096/],
      ['/v1/auth/principals', { kind: 'user', display_name: 'u'.repeat(201) }, /display_name.*200/],
      ['/v1/auth/principals', { kind: 'user', display_name: 'u', attributes: { big: 'x'.repeat(17_000) } }, /attributes.*16384/],
      ['/v1/auth/principals/admin/api-tokens', { name: 'n'.repeat(201), expires_at: new Date(Date.now() + 3600_000).toISOString() }, /name.*200/],
    ];
    for (const [path, body, detail] of cases) {
      const res = await ctx.api.post(path, body);
      assert.equal(res.status, 400, `${path} ${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(res.json)}`);
      assert.match(res.json.detail, detail);
    }
    assert.equal((await ctx.api.post('/v1/uploads', { expected_digest: digest, expected_size_bytes: 4, filename_hint: 'f'.repeat(255) })).status, 201);
  });

  it('refuses U+0000 in any JSON string, on every store alike', async () => {
    const cases: [string, unknown][] = [
      ['/v1/images', { name: 'nul', description: 'before\u0000after' }],
      ['/v1/uploads', { expected_digest: sha256(random(4)), expected_size_bytes: 4, filename_hint: 'a\u0000b' }],
      ['/v1/auth/principals', { kind: 'user', display_name: 'x', attributes: { 'k\u0000': 'v' } }],
    ];
    for (const [path, body] of cases) {
      const res = await ctx.api.post(path, body);
      assert.equal(res.status, 400, path);
      assert.equal(res.json.code, 'invalid_text');
      assert.match(res.json.detail, /U\+0000/);
    }
    assert.equal((await ctx.api.get('/v1/images/nul')).status, 404, 'nothing was stored');
  });
});
