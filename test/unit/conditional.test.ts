import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decide, parseHttpDate } from '../../src/http/conditional.ts';

const rep = { etag: '"sha256:abc"', lastModified: new Date('2026-11-23T10:00:00.500Z'), size: 1000 };
const get = (h: Record<string, string> = {}) => decide({ method: 'GET', ...h }, rep);

describe('conditional and range decisions (RFC 9110)', () => {
  it('serves the whole representation without conditions', () => {
    assert.deepEqual(get(), { status: 200 });
    assert.deepEqual(decide({ method: 'HEAD', range: 'bytes=0-1' }, rep), { status: 200 }, 'HEAD ignores Range');
  });

  it('answers one range of each form with 206', () => {
    assert.deepEqual(get({ range: 'bytes=0-99' }), { status: 206, range: { start: 0, end: 99 } });
    assert.deepEqual(get({ range: 'bytes=990-' }), { status: 206, range: { start: 990, end: 999 } });
    assert.deepEqual(get({ range: 'bytes=-10' }), { status: 206, range: { start: 990, end: 999 } });
    assert.deepEqual(get({ range: 'bytes=-5000' }), { status: 206, range: { start: 0, end: 999 } });
    assert.deepEqual(get({ range: 'bytes=500-5000' }), { status: 206, range: { start: 500, end: 999 } }, 'an end beyond the size is clamped');
    assert.deepEqual(get({ range: 'bytes=999-999' }), { status: 206, range: { start: 999, end: 999 } });
  });

  it('answers several, malformed, foreign-unit and unsatisfiable ranges with 416', () => {
    for (const range of ['bytes=0-1,5-6', 'bytes=abc', 'items=0-1', 'bytes=5-1', 'bytes=1000-', 'bytes=-0', 'bytes=', 'bytes=--1', 'bytes=0-1 junk', `bytes=${'9'.repeat(30)}-`]) {
      assert.equal(get({ range }).status, 416, range);
    }
    assert.equal(decide({ method: 'GET', range: 'bytes=0-' }, { ...rep, size: 0 }).status, 416, 'no byte of an empty blob is satisfiable');
  });

  it('answers 304 to a matching If-None-Match (weak comparison, lists, *)', () => {
    for (const v of ['"sha256:abc"', 'W/"sha256:abc"', '"x", "sha256:abc"', '*']) assert.deepEqual(get({ ifNoneMatch: v }), { status: 304 }, v);
    assert.deepEqual(get({ ifNoneMatch: '"other"', range: 'bytes=0-0' }), { status: 206, range: { start: 0, end: 0 } });
  });

  it('answers 304 to If-Modified-Since at or after Last-Modified, unless If-None-Match is present', () => {
    assert.deepEqual(get({ ifModifiedSince: 'Mon, 23 Nov 2026 10:00:00 GMT' }), { status: 304 });
    assert.deepEqual(get({ ifModifiedSince: 'Mon, 23 Nov 2026 09:59:59 GMT' }), { status: 200 });
    assert.deepEqual(get({ ifModifiedSince: 'not a date' }), { status: 200 });
    assert.deepEqual(get({ ifModifiedSince: 'Mon, 23 Nov 2026 10:00:00 GMT', ifNoneMatch: '"other"' }), { status: 200 });
  });

  it('honours Range only while If-Range still matches', () => {
    assert.equal(get({ range: 'bytes=0-9', ifRange: '"sha256:abc"' }).status, 206);
    assert.equal(get({ range: 'bytes=0-9', ifRange: 'Mon, 23 Nov 2026 10:00:00 GMT' }).status, 206);
    assert.equal(get({ range: 'bytes=0-9', ifRange: '"sha256:old"' }).status, 200);
    assert.equal(get({ range: 'bytes=0-9', ifRange: 'W/"sha256:abc"' }).status, 200, 'weak tags never match If-Range');
    assert.equal(get({ range: 'bytes=0-9', ifRange: 'Sun, 22 Nov 2026 10:00:00 GMT' }).status, 200);
  });
});

describe('HTTP-date parsing (RFC 9110 §5.6.7)', () => {
  const now = Date.parse('2026-12-01T00:00:00Z');
  it('reads the three forms recipients must accept', () => {
    const expected = Date.parse('1994-11-06T08:49:37Z');
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', now), expected);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now), expected);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', now), expected);
    assert.equal(parseHttpDate('Tuesday, 01-Jan-30 00:00:00 GMT', now), Date.parse('2030-01-01T00:00:00Z'), 'two-digit years up to 50 ahead are ahead');
  });
  it('refuses everything else, so the condition is ignored', () => {
    for (const v of ['3000', '2026-11-23T10:00:00Z', 'Sun, 06 Nov 1994 08:49:37', 'Sun, 31 Feb 1994 08:49:37 GMT', 'Sun, 06 Nov 1994 25:00:00 GMT', 'sun, 06 nov 1994 08:49:37 gmt', '']) {
      assert.equal(parseHttpDate(v, now), undefined, v);
    }
    assert.equal(get({ ifModifiedSince: '3000' }).status, 200);
  });
  it('clamps any last position past the end', () => {
    assert.deepEqual(get({ range: `bytes=0-${'9'.repeat(40)}` }), { status: 206, range: { start: 0, end: 999 } });
  });
});
