import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DomainError } from '../../src/domain/errors.ts';
import { assertAcceptsParts, partLayout, selectCompletedParts, type UploadSession } from '../../src/domain/upload.ts';

const now = new Date('2026-11-23T10:00:00Z');
const s = (over: Partial<UploadSession> = {}): UploadSession => ({
  id: 'u',
  expectedDigest: `sha256:${'a'.repeat(64)}`,
  expectedSize: 30,
  state: 'uploading',
  revision: 1,
  expiresAt: new Date(now.getTime() + 1000),
  createdAt: now,
  updatedAt: now,
  ...over,
});
const held = [1, 2, 3].map((n) => ({ number: n, size: 10, etag: `e${n}`, key: `k${n}` }));
const req = (...n: number[]) => n.map((x) => ({ number: x, etag: `e${x}`, size: 10 }));
const throws = (fn: () => unknown, kind: string, code: string) => assert.throws(fn, (e: unknown) => e instanceof DomainError && e.kind === kind && e.code === code);

describe('upload rules', () => {
  it('accepts parts only while created or uploading and not expired', () => {
    assertAcceptsParts(s({ state: 'created' }), now);
    assertAcceptsParts(s(), now);
    for (const state of ['completed', 'ingesting', 'ready', 'failed', 'aborted'] as const) throws(() => assertAcceptsParts(s({ state }), now), 'precondition_failed', 'upload_not_open');
    throws(() => assertAcceptsParts(s({ expiresAt: now }), now), 'precondition_failed', 'upload_expired');
  });

  it('selects the listed parts in order when etags, sizes and the total agree', () => {
    assert.deepEqual(selectCompletedParts(s(), held, req(1, 2, 3)), held);
    assert.deepEqual(selectCompletedParts(s({ expectedSize: 20 }), held, req(1, 3)), [held[0], held[2]], 'held parts not listed are dropped');
  });

  it('places parts of a declared size: exact offsets and sizes, a bounded count, all listed at complete', () => {
    const placed = s({ expectedSize: 25, partSize: 10 });
    assert.deepEqual([1, 2, 3].map((n) => partLayout(placed, n)), [{ offset: 0, size: 10 }, { offset: 10, size: 10 }, { offset: 20, size: 5 }]);
    throws(() => partLayout(placed, 4), 'invalid', 'part_number_out_of_range');
    assert.equal(partLayout(s(), 7), undefined, 'without a declared size parts have no fixed place');
    assert.deepEqual(partLayout(s({ expectedSize: 0, partSize: 10 }), 1), { offset: 0, size: 0 }, 'an empty upload has one empty part');
    const parts = [{ number: 1, size: 10, etag: 'a', key: 'placed' }, { number: 2, size: 10, etag: 'b', key: 'placed' }, { number: 3, size: 5, etag: 'c', key: 'placed' }];
    assert.equal(selectCompletedParts(placed, parts, parts.map((p) => ({ number: p.number, etag: p.etag, size: p.size }))).length, 3);
    // Placed parts have exact sizes, so a list adding up to the expected size lists them all.
    throws(() => selectCompletedParts(placed, parts, [{ number: 1, etag: 'a', size: 10 }, { number: 2, etag: 'b', size: 10 }]), 'invalid', 'upload_size_mismatch');
  });

  it('refuses lists out of order, with duplicates, unknown parts, wrong etags or sizes, or the wrong total', () => {
    throws(() => selectCompletedParts(s(), held, req(2, 1, 3)), 'invalid', 'parts_not_ascending');
    throws(() => selectCompletedParts(s(), held, req(1, 1, 2)), 'invalid', 'parts_not_ascending');
    throws(() => selectCompletedParts(s(), held, req(1, 2, 4)), 'precondition_failed', 'part_missing');
    throws(() => selectCompletedParts(s(), held, [...req(1, 2), { number: 3, etag: 'stale', size: 10 }]), 'precondition_failed', 'part_etag_mismatch');
    throws(() => selectCompletedParts(s(), held, [...req(1, 2), { number: 3, etag: 'e3', size: 11 }]), 'precondition_failed', 'part_size_mismatch');
    throws(() => selectCompletedParts(s(), held, req(1, 2)), 'invalid', 'upload_size_mismatch');
  });
});
