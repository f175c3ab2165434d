import { randomBytes } from 'node:crypto';
import { digestHex, type Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';

/**
 * The only file that knows where bytes live in the bucket (below the optional key prefix):
 *
 *   blobs/sha256/<64 hex>                 trusted blobs, written only by `commit` (a server-side copy)
 *   claims/sha256/<64 hex>                while a commit copies: the one conditional write that
 *                                         decides which racing commit created the blob
 *   uploads/<upload id>/part-<key>        the bytes of one part write (each write a key of its own)
 *   uploads/<upload id>/stage-<nonce>     a blob being assembled from several parts
 *
 * Keys are driver keys as the metadata store records them (`StoredBytes.key`). Every function
 * validates what it joins, so no caller-supplied string can reach another area.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const PART_KEY = /^[0-9a-f]{32}$/;
const STAGE_KEY = /^stage-[0-9a-f]{32}$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new DomainError('invalid', `invalid_${what}`, `"${value.slice(0, 80)}" is not a valid ${what.replace('_', ' ')}`);
  return value;
}

export const newKey = () => randomBytes(16).toString('hex');

export function s3Layout(prefix: string) {
  const uploadArea = (uploadId: string) => `${prefix}uploads/${checked(uploadId, UUID, 'upload_id')}/`;
  return {
    prefix,
    blob: (digest: Digest) => `${prefix}blobs/sha256/${digestHex(digest)}`,
    claim: (digest: Digest) => `${prefix}claims/sha256/${digestHex(digest)}`,
    uploadArea,
    part: (uploadId: string, key: string) => `${uploadArea(uploadId)}part-${checked(key, PART_KEY, 'part_key')}`,
    /** The object of staged bytes: a stage of its own, or the single part that is the whole blob. */
    staged: (uploadId: string, key: string) => `${uploadArea(uploadId)}${STAGE_KEY.test(key) ? key : `part-${checked(key, PART_KEY, 'staged_key')}`}`,
    newStageKey: () => `stage-${newKey()}`,
    isStageKey: (key: string) => STAGE_KEY.test(key),
  };
}
export type S3Layout = ReturnType<typeof s3Layout>;
