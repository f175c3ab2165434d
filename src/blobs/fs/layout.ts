import { join } from 'node:path';
import { digestHex, parseDigest, type Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';

/**
 * The only file that knows where bytes live in the data directory:
 *
 *   <root>/
 *     blobs/sha256/<first 2 hex>/<64 hex>      trusted blobs, written once by `commit` (link)
 *     uploads/<upload id>/                     one area per upload session, removed as a whole
 *       part-<key>                             the bytes of one part write under a key of its own
 *       assembly                               parts written in place; becomes the blob when all are
 *       stage-<nonce>.tmp                      a blob being staged from parts that are not in place
 *     tmp/                                     readiness probes
 *
 * Keys are driver keys as the metadata store records them (`StoredBytes.key`). Every function
 * validates what it joins, so no caller-supplied string can leave the root.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** A random part key; keys written before the part number left the name carry it as a prefix. */
const PART_KEY = /^(?:\d{5}-)?[0-9a-f]{16,64}$/;
const NONCE = /^[0-9a-f]{16,64}$/;

/** The key of the parts written in place: the assembly. */
export const ASSEMBLY_KEY = 'assembly';

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

/** The file of a part's bytes: the assembly for bytes in place, else the part's own file. */
export const partPath = (root: string, uploadId: string, key: string) =>
  join(uploadDir(root, uploadId), key === ASSEMBLY_KEY ? ASSEMBLY_KEY : `part-${checked(key, PART_KEY, 'part_key')}`);

export const assemblyPath = (root: string, uploadId: string) => join(uploadDir(root, uploadId), ASSEMBLY_KEY);

export const stagePath = (root: string, uploadId: string, nonce: string) => join(uploadDir(root, uploadId), `stage-${checked(nonce, NONCE, 'nonce')}.tmp`);

/** A file of the upload area that holds staged bytes, by its name there (`Staged.key`). */
export function stagedPath(root: string, uploadId: string, name: string): string {
  if (name !== ASSEMBLY_KEY && !(name.startsWith('part-') && PART_KEY.test(name.slice(5))) && !/^stage-[0-9a-f]{16,64}\.tmp$/.test(name)) {
    throw new DomainError('invalid', 'invalid_staged_key', `"${name.slice(0, 80)}" names no staged file`);
  }
  return join(uploadDir(root, uploadId), name);
}
