import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_KINDS } from '../../src/domain/errors.ts';
import { STATUS_OF_KIND, validationProblem } from '../../src/http/v1/problem.ts';

describe('problem mapping', () => {
  it('maps every error kind to a distinct 4xx/5xx status', () => {
    for (const kind of ERROR_KINDS) assert.ok(STATUS_OF_KIND[kind] >= 400 && STATUS_OF_KIND[kind] < 600, kind);
    assert.equal(new Set(Object.values(STATUS_OF_KIND)).size, ERROR_KINDS.length);
    assert.deepEqual(Object.keys(STATUS_OF_KIND).sort(), [...ERROR_KINDS].sort());
  });

  it('names the offending field of a schema violation', () => {
    const p = validationProblem(
      [
        { keyword: 'pattern', instancePath: '/expected_digest', schemaPath: '', params: {}, message: 'must match pattern "^sha256:[0-9a-f]{64}$"' },
        { keyword: 'additionalProperties', instancePath: '', schemaPath: '', params: { additionalProperty: 'colour' } },
        { keyword: 'required', instancePath: '/parts/0', schemaPath: '', params: { missingProperty: 'etag' } },
      ],
      'body',
    );
    assert.equal(p.status, 400);
    assert.match(p.detail, /field "expected_digest" must match pattern/);
    assert.match(p.detail, /unknown field "colour"/);
    assert.match(p.detail, /missing required field "parts\.0\.etag"/);
    assert.equal(p.errors?.length, 3);
  });
});
