import { join } from 'node:path';
import { digestHex, parseDigest, type Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';
import { MAX_PART_NUMBER, MIN_PART_NUMBER } from '../../domain/upload.ts';

/**
 * The only file that knows where bytes live in the data directory:
 *
 *   <root>/
 *     blobs/sha256/<first 2 hex>/<64 hex>      trusted blobs, written once by rename
 *     uploads/<upload id>/                     one area per upload session, removed as a whole
 *       part-<number>-<key>                    the bytes of one part write
 *       assembly                               parts written in place (declared part size)
 *       promote-<nonce>.tmp                    a promotion in progress
 *     tmp/                                     readiness probes
 *
 * Every function validates what it joins, so no caller-supplied string can leave the root.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const KEY = /^[0-9a-f]{16,64}$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new DomainError('invalid', `invalid_${what}`, `"${value.slice(0, 80)}" is not a valid ${what.replace('_', ' ')}`);
  return value;
}

export const blobsDir = (root: string) => join(root, 'blobs', 'sha256');
export const uploadsDir = (root: string) => join(root, 'uploads');
export const tmpDir = (root: string) => join(root, 'tmp');

export function blobPath(root: string, digest: Digest): string {
  const hex = digestHex(parseDigest(digest));
  return join(blobsDir(root), hex.slice(0, 2), hex);
}

export const uploadDir = (root: string, uploadId: string) => join(uploadsDir(root), checked(uploadId, UUID, 'upload_id'));

export function partPath(root: string, uploadId: string, partNumber: number, key: string): string {
  if (!Number.isInteger(partNumber) || partNumber < MIN_PART_NUMBER || partNumber > MAX_PART_NUMBER) {
    throw new DomainError('invalid', 'invalid_part_number', `part number ${partNumber} is outside ${MIN_PART_NUMBER}..${MAX_PART_NUMBER}`);
  }
  return join(uploadDir(root, uploadId), `part-${String(partNumber).padStart(5, '0')}-${checked(key, KEY, 'part_key')}`);
}

export const assemblyPath = (root: string, uploadId: string) => join(uploadDir(root, uploadId), 'assembly');

export const promoteTempPath = (root: string, uploadId: string, nonce: string) => join(uploadDir(root, uploadId), `promote-${checked(nonce, KEY, 'nonce')}.tmp`);
