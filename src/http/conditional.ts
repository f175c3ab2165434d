import type { ByteRange } from '../blobs/driver.ts';

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
    // "A recipient MUST ignore the If-Modified-Since header field if the received field value is not a valid HTTP-date."
    const since = parseHttpDate(req.ifModifiedSince);
    if (since !== undefined && seconds(rep.lastModified) <= Math.floor(since / 1000)) return { status: 304 };
  }
  if (req.method !== 'GET' || req.range === undefined) return { status: 200 };
  if (req.ifRange !== undefined && !ifRangeMatches(req.ifRange, rep)) return { status: 200 };
  return parseRange(req.range, rep.size);
}

/** Weak comparison (RFC 9110 §8.8.3.2) against a comma-separated list or `*`. */
export function etagListMatches(header: string, etag: string): boolean {
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  return header.trim() === '*' || header.split(',').some((t) => opaque(t) === opaque(etag));
}

/** If-Range: a strong entity tag must match exactly; a date must equal Last-Modified. */
function ifRangeMatches(value: string, rep: Validators): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return v === rep.etag;
  const date = parseHttpDate(v);
  return date !== undefined && Math.floor(date / 1000) === seconds(rep.lastModified);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const MONTH = `(${MONTHS.join('|')})`;
const IMF_FIXDATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/**
 * An HTTP-date (RFC 9110 §5.6.7) in epoch milliseconds, or undefined when the value is not one:
 * IMF-fixdate, or the obsolete RFC 850 and asctime forms recipients must still accept. A
 * two-digit year more than 50 years ahead means the most recent past year with those digits.
 */
export function parseHttpDate(value: string, now = Date.now()): number | undefined {
  let day: string, month: string, year: number, time: string[];
  let m: RegExpExecArray | null;
  if ((m = IMF_FIXDATE.exec(value))) [day, month, year, time] = [m[1]!, m[2]!, Number(m[3]), m.slice(4, 7)];
  else if ((m = ASCTIME_DATE.exec(value))) [month, day, time, year] = [m[1]!, m[2]!.trim(), m.slice(3, 6), Number(m[6])];
  else if ((m = RFC850_DATE.exec(value))) {
    const thisYear = new Date(now).getUTCFullYear();
    year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    [day, month, time] = [m[1]!, m[2]!, m.slice(4, 7)];
  } else return undefined;
  const [h, min, sec] = time.map(Number) as [number, number, number];
  const ms = Date.UTC(year, MONTHS.indexOf(month), Number(day), h, min, sec);
  const check = new Date(ms);
  // Reject impossible values (31 Feb, 25:00) instead of letting Date roll them over.
  if (check.getUTCDate() !== Number(day) || h > 23 || min > 59 || sec > 60) return undefined;
  return ms;
}

/** One range; positions of any length (a last position past the end is clamped, RFC 9110 §14.1.2). */
const SINGLE = /^bytes=(?:(\d+)-(\d*)|-(\d+))$/;

function parseRange(header: string, size: number): Decision {
  const value = header.trim();
  if (value.length > 200) return { status: 416, reason: 'the Range header is too long' };
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
