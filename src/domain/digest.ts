import { DomainError } from './errors.ts';

/** A content address: `sha256:` followed by 64 lowercase hex digits (contract `Digest`). */
export type Digest = `sha256:${string}`;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export const isDigest = (value: string): value is Digest => DIGEST.test(value);

export function parseDigest(value: string): Digest {
  if (!isDigest(value)) {
    throw new DomainError('invalid', 'invalid_digest', `"${value.slice(0, 80)}" is not a digest of the form sha256:<64 lowercase hex digits>`);
  }
  return value;
}

/** The 64 hex digits of a digest. */
export const digestHex = (digest: Digest): string => digest.slice('sha256:'.length);
