import type { ByteRange } from '../blobs/blob-store.ts';

/**
 * What to answer to a GET or HEAD of an immutable representation, following RFC 9110 §13.2.2:
 * If-None-Match (or, without it, If-Modified-Since) may end in 304; then, for GET, a Range
 * honoured only if If-Range still matches. The contract allows exactly one range
 * (`bytes=start-end`, `bytes=start-`, `bytes=-suffix`); several ranges, another unit, a
 * malformed or an unsatisfiable range are answered with 416.
 */
export type Decision =
  | { status: 304 }
  | { status: 200 }
  | { status: 206; range: ByteRange }
  | { status: 416; reason: string };

export interface RequestConditions {
  method: 'GET' | 'HEAD';
  range?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifRange?: string;
}

export interface Validators {
  /** Strong entity tag, quoted: `"sha256:…"`. */
  etag: string;
  lastModified: Date;
  size: number;
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

export function decide(req: RequestConditions, rep: Validators): Decision {
  if (req.ifNoneMatch !== undefined) {
    if (etagListMatches(req.ifNoneMatch, rep.etag)) return { status: 304 };
  } else if (req.ifModifiedSince !== undefined) {
    const since = Date.parse(req.ifModifiedSince);
    if (!Number.isNaN(since) && seconds(rep.lastModified) <= Math.floor(since / 1000)) return { status: 304 };
  }
  if (req.method !== 'GET' || req.range === undefined) return { status: 200 };
  if (req.ifRange !== undefined && !ifRangeMatches(req.ifRange, rep)) return { status: 200 };
  return parseRange(req.range, rep.size);
}

/** Weak comparison (RFC 9110 §8.8.3.2) against a comma-separated list or `*`. */
function etagListMatches(header: string, etag: string): boolean {
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  return header.trim() === '*' || header.split(',').some((t) => opaque(t) === opaque(etag));
}

/** If-Range: a strong entity tag must match exactly; a date must equal Last-Modified. */
function ifRangeMatches(value: string, rep: Validators): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === rep.etag;
  const date = Date.parse(v);
  return !Number.isNaN(date) && Math.floor(date / 1000) === seconds(rep.lastModified);
}

const SINGLE = /^bytes=(?:(\d{1,16})-(\d{0,16})|-(\d{1,16}))$/;

function parseRange(header: string, size: number): Decision {
  const value = header.trim();
  if (value.includes(',')) return { status: 416, reason: 'multiple ranges are not supported; request one range' };
  const m = SINGLE.exec(value);
  if (!m) return { status: 416, reason: `Range "${value.slice(0, 100)}" is not bytes=start-end, bytes=start- or bytes=-suffix` };
  if (m[3] !== undefined) {
    const suffix = Number(m[3]);
    if (suffix === 0 || size === 0) return { status: 416, reason: `the suffix range ${value} selects no bytes of a ${size}-byte blob` };
    return { status: 206, range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Number(m[2]);
  if (end < start) return { status: 416, reason: `the range ${value} ends before it starts` };
  if (start >= size) return { status: 416, reason: `the range ${value} starts at or beyond the end of the ${size}-byte blob` };
  return { status: 206, range: { start, end: Math.min(end, size - 1) } };
}
