import type { Digest } from '../domain/digest.ts';
import type { StoredManifest } from '../domain/oci.ts';

/**
 * The OCI registry's metadata: repositories (created by their first push), the blobs each may
 * serve, manifests and tags. Every change is atomic, and lists are in byte order of names, so
 * several instances on one database agree. Errors: `unavailable`; nothing else escapes.
 */
export interface RegistryRepository {
  /** Repository names after `after` (exclusive), in byte order, at most `limit`. */
  listRepositories(input: { after?: string; limit: number }): Promise<string[]>;
  repositoryExists(name: string): Promise<boolean>;
  /** Lets `repository` serve the CAS blob (creating the repository). Idempotent. */
  linkBlob(input: { repository: string; digest: Digest; now: Date }): Promise<void>;
  /** false when the repository did not serve the blob. The bytes stay in the CAS. */
  unlinkBlob(input: { repository: string; digest: Digest }): Promise<boolean>;
  /** Which of `digests` the repository serves as blobs. */
  linkedBlobs(repository: string, digests: readonly Digest[]): Promise<Set<Digest>>;
  /**
   * Records a manifest (whose bytes are already a CAS blob) in the repository, creating the
   * repository, and points `tag` at it when given, atomically. Recording a manifest the
   * repository holds already changes nothing but the tag.
   */
  putManifest(input: { manifest: Omit<StoredManifest, 'createdAt'>; tag?: string; now: Date }): Promise<void>;
  getManifest(repository: string, digest: Digest): Promise<StoredManifest | undefined>;
  /** Which of `digests` the repository holds as manifests. */
  heldManifests(repository: string, digests: readonly Digest[]): Promise<Set<Digest>>;
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>;
  /** Tags after `after` (exclusive), in byte order, at most `limit`. */
  listTags(input: { repository: string; after?: string; limit: number }): Promise<string[]>;
  /** Removes a manifest and every tag pointing at it; false when the repository did not hold it. */
  deleteManifest(input: { repository: string; digest: Digest }): Promise<boolean>;
  /** Removes one tag; false when there was none. */
  deleteTag(input: { repository: string; tag: string }): Promise<boolean>;
  /** Manifests of the repository whose subject is `subject`, oldest first. */
  listReferrers(input: { repository: string; subject: Digest }): Promise<StoredManifest[]>;
  /** The secret named `name`, created with `create()` by whichever instance asks first. */
  serverSecret(name: string, create: () => string, now: Date): Promise<string>;
}
