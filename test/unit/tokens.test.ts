import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateToken, hashSecret, secretMatches, tokenParts } from '../../src/auth/tokens.ts';

describe('API tokens', () => {
  it('are imgsrv_<32 hex id>_<256-bit base64url secret> and parse back', () => {
    const t = generateToken();
    assert.match(t.plaintext, /^imgsrv_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(t.secret, 'base64url').length, 32);
    assert.deepEqual(tokenParts(t.plaintext), { id: t.id, secret: t.secret });
    assert.notEqual(generateToken().plaintext, t.plaintext);
  });

  it('store only a sha256 of the secret and compare it', () => {
    const t = generateToken();
    const stored = hashSecret(t.secret);
    assert.match(stored, /^[0-9a-f]{64}$/);
    assert.ok(!stored.includes(t.secret));
    assert.ok(secretMatches(t.secret, stored));
    assert.ok(!secretMatches(`${t.secret}x`, stored));
    assert.ok(!secretMatches(t.secret, 'zz'));
  });

  it('read any other bearer string as the bootstrap token, under an id that reveals nothing', () => {
    assert.deepEqual(tokenParts('operator-chosen-secret'), { id: 'bootstrap', secret: 'operator-chosen-secret' });
    assert.deepEqual(tokenParts('imgsrv_short_x'), { id: 'bootstrap', secret: 'imgsrv_short_x' });
  });
});
