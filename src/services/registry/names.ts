import { isDigest, type Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';
import { isRepositoryName, isTag, looksLikeDigest, MAX_NAME_LENGTH } from '../../domain/oci.ts';

/**
 * Names and references as the registry checks them, with the error codes the OCI surface
 * maps to its envelope (`NAME_INVALID`, `DIGEST_INVALID`, `MANIFEST_UNKNOWN`, ...).
 */
export function repositoryName(name: string): string {
  if (!isRepositoryName(name)) {
    throw new DomainError('invalid', 'name_invalid', `"${name.slice(0, 100)}" is not a repository name (lowercase path components of [a-z0-9] joined by . _ __ or -, at most ${MAX_NAME_LENGTH} characters)`);
  }
  return name;
}

/** A digest this registry can address (sha256). @throws invalid (`digest_invalid`) */
export function digestOf(value: string): Digest {
  if (!isDigest(value)) throw new DomainError('invalid', 'digest_invalid', `"${value.slice(0, 100)}" is not a digest this registry supports (sha256:<64 lowercase hex digits>)`);
  return value;
}

/**
 * A manifest reference: a digest, or a tag. A reference that is neither names no manifest
 * (404 `MANIFEST_UNKNOWN`, as clients and the conformance suite expect); one that looks like a
 * digest of another algorithm, or a malformed one, is `DIGEST_INVALID`.
 */
export function manifestReference(reference: string, use: 'read' | 'write' = 'read'): { digest: Digest } | { tag: string } {
  if (isDigest(reference)) return { digest: reference };
  if (looksLikeDigest(reference) || reference.includes(':')) throw new DomainError('invalid', 'digest_invalid', `"${reference.slice(0, 100)}" is not a sha256 digest`);
  if (!isTag(reference)) {
    const detail = `"${reference.slice(0, 100)}" is not a tag (a letter, digit or _ then up to 127 of [A-Za-z0-9._-])`;
    throw use === 'read' ? new DomainError('not_found', 'manifest_unknown', `${detail}, so no manifest has it`) : new DomainError('invalid', 'manifest_invalid', detail);
  }
  return { tag: reference };
}
