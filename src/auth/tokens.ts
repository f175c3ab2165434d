import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Opaque API tokens: `imgsrv_<id>_<secret>`, where the id (32 hex digits) finds the row and
 * the secret is 256 random bits (base64url). Only sha256(secret) is stored; comparison is in
 * constant time. A bearer string in any other shape can only be the operator-chosen bootstrap
 * token (IMGSRV_BOOTSTRAP_TOKEN), stored under the fixed id `bootstrap`: nothing derived from
 * the secret is ever used as an id, so ids in logs reveal nothing about it.
 */
const CANONICAL = /^imgsrv_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;
/** Longest bearer value looked at (OIDC tokens with many claims included); anything longer is rejected unread. */
export const MAX_BEARER_LENGTH = 8192;

export interface TokenParts {
  id: string;
  secret: string;
}

export function generateToken(): TokenParts & { plaintext: string } {
  const id = randomBytes(16).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, secret, plaintext: `imgsrv_${id}_${secret}` };
}

export const BOOTSTRAP_TOKEN_ID = 'bootstrap';

export function tokenParts(plaintext: string): TokenParts {
  const m = CANONICAL.exec(plaintext);
  if (m) return { id: m[1]!, secret: m[2]! };
  return { id: BOOTSTRAP_TOKEN_ID, secret: plaintext };
}

export const hashSecret = (secret: string): string => sha256Hex(secret);

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(sha256Hex(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return presented.length === stored.length && timingSafeEqual(presented, stored);
}

const sha256Hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
