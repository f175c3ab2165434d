import type { Principal } from '../../domain/auth.ts';
import type { BlobRecord } from '../../domain/blob.ts';
import type { Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';
import type { UploadSession } from '../../domain/upload.ts';
import type { MetadataStore } from '../../store/metadata-store.ts';
import type { AuditLog } from '../audit.ts';
import type { ServiceDeps } from '../deps.ts';
import type { RegistryUploads } from '../registry-uploads.ts';
import { assertWritable } from './manifests.ts';
import { digestOf, repositoryName } from './names.ts';
import type { Projection } from './projection.ts';

export interface RegistryBlobDeps extends Pick<ServiceDeps, 'clock'> {
  store: Pick<MetadataStore, 'getBlob' | 'linkBlob' | 'unlinkBlob' | 'linkedBlobs' | 'listRepositories' | 'repositoryExists' | 'listTags'>;
  uploads: Pick<RegistryUploads, 'open' | 'commit'>;
  projection: Projection;
  /** Published imgsrv image names (projected repositories), for the catalog. */
  projectedNames: () => Promise<string[]>;
  audit: AuditLog;
}

export type RegistryBlobs = ReturnType<typeof createRegistryBlobs>;

/** A page of names in byte order after `last`, and whether more follow. */
export interface Page {
  names: string[];
  more: boolean;
}

/** Largest page `n` may ask for. */
export const MAX_PAGE = 1000;

/**
 * What a repository may serve (its blob links: the bytes are the one CAS every surface shares),
 * pushes into it, mounts from other repositories, and the listings. Deleting a blob only
 * unlinks it from the repository: bytes that anything else (another repository, an imgsrv
 * artifact) references are never removed.
 */
export function createRegistryBlobs(deps: RegistryBlobDeps) {
  const { store, projection, clock } = deps;

  /** Whether `repository` serves the blob (linked, or a layer of a projected version). */
  const serves = async (repository: string, digest: Digest) =>
    (await store.linkedBlobs(repository, [digest])).has(digest) || (await projection.servesBlob(repository, digest));

  return {
    /** @throws not_found (`blob_unknown`) unless the repository serves a stored blob of that digest. */
    async describe(repository: string, digest: string): Promise<BlobRecord> {
      const name = repositoryName(repository);
      const d = digestOf(digest);
      const blob = (await serves(name, d)) ? await store.getBlob(d) : undefined;
      if (!blob) throw new DomainError('not_found', 'blob_unknown', `repository ${name} has no blob ${d}`);
      return blob;
    },

    /** @throws not_found (`blob_unknown`); forbidden (`denied`) for a projected repository */
    async remove(actor: Principal, repository: string, digest: string): Promise<void> {
      const name = repositoryName(repository);
      await assertWritable(projection, name);
      const d = digestOf(digest);
      if (!(await store.unlinkBlob({ repository: name, digest: d }))) throw new DomainError('not_found', 'blob_unknown', `repository ${name} has no blob ${d}`);
      deps.audit({ action: 'oci.blob.delete', actor: actor.id, target: `${name}@${d}` });
    },

    /** "Mount a blob from another repository": true when `from` serves it (answered from the CAS, no bytes move). */
    async mount(actor: Principal, input: { repository: string; digest: string; from?: string }): Promise<boolean> {
      const name = repositoryName(input.repository);
      await assertWritable(projection, name);
      const d = digestOf(input.digest);
      if (input.from === undefined || !(await serves(repositoryName(input.from), d)) || !(await store.getBlob(d))) return false;
      await store.linkBlob({ repository: name, digest: d, now: clock.now() });
      deps.audit({ action: 'oci.blob.mount', actor: actor.id, target: `${name}@${d}`, from: input.from });
      return true;
    },

    /** @throws forbidden (`denied`) for a projected repository */
    async startUpload(repository: string): Promise<UploadSession> {
      const name = repositoryName(repository);
      await assertWritable(projection, name);
      return deps.uploads.open(name);
    },

    /** Commits the upload under `digest` (verified) and lets the repository serve it. */
    async finishUpload(actor: Principal, input: { repository: string; uploadId: string; digest: string; signal: AbortSignal }): Promise<Digest> {
      const name = repositoryName(input.repository);
      const d = digestOf(input.digest);
      await deps.uploads.commit({ repository: name, uploadId: input.uploadId, digest: d, signal: input.signal });
      await store.linkBlob({ repository: name, digest: d, now: clock.now() });
      deps.audit({ action: 'oci.blob.push', actor: actor.id, target: `${name}@${d}` });
      return d;
    },

    /** Tags of a repository in byte order. @throws not_found (`name_unknown`) */
    async tags(repository: string, page: { n: number; last?: string }): Promise<Page> {
      const name = repositoryName(repository);
      const projected = await projection.tags(name);
      if (projected) return slice(projected, page);
      if (!(await store.repositoryExists(name))) throw new DomainError('not_found', 'name_unknown', `repository ${name} does not exist`);
      const names = await store.listTags({ repository: name, after: page.last, limit: page.n + 1 });
      return { names: names.slice(0, page.n), more: names.length > page.n };
    },

    /** Every repository, pushed ones and projected imgsrv images, in byte order. */
    async repositories(page: { n: number; last?: string }): Promise<Page> {
      const pushed = await store.listRepositories({ after: page.last, limit: page.n + 1 });
      const all = [...new Set([...pushed, ...(await deps.projectedNames())])].sort();
      return slice(all, page);
    },
  };
}

const slice = (sorted: readonly string[], page: { n: number; last?: string }): Page => {
  const after = page.last === undefined ? sorted : sorted.filter((t) => t > page.last!);
  return { names: after.slice(0, page.n), more: after.length > page.n };
};
