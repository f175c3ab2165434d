import type { Principal } from '../domain/auth.ts';
import { describeArtifact, INCUS_METADATA_ATTACHMENT, incusImageType, type Artifact, type Attachment } from '../domain/catalog.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError, isDomainError } from '../domain/errors.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { Cas } from '../blobs/cas.ts';
import type { CatalogService } from './catalog.ts';
import type { AuditLog } from './audit.ts';
import { onConflict } from './conflict.ts';
import { inspectIncusMetadata } from './incus-metadata.ts';
import type { ServiceDeps } from './deps.ts';

export interface ArtifactServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  audit: AuditLog;
  store: Pick<MetadataStore, 'getBlob' | 'hasLiveUpload' | 'insertArtifact' | 'deleteArtifact' | 'listArtifacts' | 'getArtifact' | 'insertAttachment' | 'deleteAttachment' | 'getAttachment'>;
  catalog: Pick<CatalogService, 'version'>;
  blobs: Pick<Cas, 'open'>;
}

export type ArtifactService = ReturnType<typeof createArtifactService>;

/** What a client says about a new artifact or attachment; the server adds identity and times. */
export type NewArtifact = Omit<Artifact, 'id' | 'versionId' | 'createdAt' | 'updatedAt'>;
export type NewAttachment = Omit<Attachment, 'id' | 'artifactId' | 'createdAt' | 'updatedAt'>;

/** Artifacts and attachments of versions, and where their bytes are. */
export function createArtifactService(deps: ArtifactServiceDeps) {
  const { store, clock, catalog } = deps;

  /**
   * "The digest must be known to the server, i.e. a trusted CAS blob or a live upload session
   * expecting that digest and size" (drafting may overlap uploading).
   */
  async function assertKnown(digest: Digest, size: number): Promise<void> {
    const blob = await store.getBlob(digest);
    if (blob && blob.size !== size) throw new DomainError('precondition_failed', 'size_contradicts_blob', `${digest} is a trusted blob of ${blob.size} bytes, not ${size}`);
    if (blob || (await store.hasLiveUpload({ digest, size, now: clock.now() }))) return;
    throw new DomainError('precondition_failed', 'digest_unknown', `${digest} (${size} bytes) is neither a trusted blob nor expected by an open upload session; upload it first`);
  }

  /**
   * An artifact of a version. Public reads (`published`) see only published versions, as the
   * contract's "for an exact published version" says; changes see drafts.
   */
  async function artifact(name: string, v: string, artifactId: string, opts: { published: boolean }): Promise<Artifact> {
    const { version } = await catalog.version(name, v);
    const found = await store.getArtifact(version.id, artifactId);
    if (!found) throw new DomainError('not_found', 'artifact_not_found', `version ${v} of ${name} has no artifact ${artifactId}`);
    if (opts.published && version.state !== 'published') {
      throw new DomainError('not_found', 'version_not_published', `version ${v} of ${name} is ${version.state}; its artifacts are served once it is published (the draft manifest is at /v1/images/${name}/versions/${v})`);
    }
    return found;
  }

  async function attachment(name: string, v: string, artifactId: string, attachmentId: string): Promise<Attachment> {
    const a = await artifact(name, v, artifactId, { published: true });
    const found = await store.getAttachment(a.id, attachmentId);
    if (!found) throw new DomainError('not_found', 'attachment_not_found', `artifact ${artifactId} has no attachment ${attachmentId}`);
    return found;
  }

  /**
   * The Incus metadata of an artifact Incus is served (a qcow2 VM disk, a squashfs container
   * rootfs) is checked as soon as its bytes are verified: once the version is publishing nothing
   * can be fixed, so a bad file is refused here when possible (otherwise `incus_index` finds it
   * at publish time).
   */
  async function assertIncusMetadata(a: Artifact, input: NewAttachment): Promise<void> {
    if (input.name !== INCUS_METADATA_ATTACHMENT || !incusImageType(a.format) || !(await store.getBlob(input.blobDigest))) return;
    try {
      await inspectIncusMetadata(deps.blobs, a, input.blobDigest, AbortSignal.timeout(60_000));
    } catch (e) {
      if (isDomainError(e) && e.kind === 'invalid') throw new DomainError('precondition_failed', e.code, e.detail);
      throw e;
    }
  }

  return {
    /** A published artifact (public read). */
    artifact: (name: string, v: string, artifactId: string) => artifact(name, v, artifactId, { published: true }),
    /** An attachment of a published artifact (public read). */
    attachment,

    /** "List primary artifacts for an exact published version." */
    async list(name: string, v: string): Promise<Artifact[]> {
      const { version } = await catalog.version(name, v);
      if (version.state !== 'published') throw new DomainError('not_found', 'version_not_published', `version ${v} of ${name} is ${version.state}; list its artifacts with the manifest`);
      return store.listArtifacts(version.id);
    },

    async add(actor: Principal, name: string, v: string, input: NewArtifact): Promise<Artifact> {
      const { version } = await catalog.version(name, v);
      await assertKnown(input.primaryBlobDigest, input.primaryBlobSize);
      const now = clock.now();
      const created: Artifact = { id: deps.newId(), versionId: version.id, ...input, createdAt: now, updatedAt: now };
      await onConflict(store.insertArtifact({ artifact: created, now }), 'artifact_exists', `version ${v} already has an artifact ${describeArtifact(input)}`);
      deps.audit({ action: 'artifact.add', actor: actor.id, target: created.id, version: `${name}:${v}`, digest: input.primaryBlobDigest });
      return created;
    },

    async remove(actor: Principal, name: string, v: string, artifactId: string): Promise<void> {
      const { version } = await catalog.version(name, v);
      if (!(await store.deleteArtifact({ versionId: version.id, artifactId, now: clock.now() }))) {
        throw new DomainError('not_found', 'artifact_not_found', `version ${v} of ${name} has no artifact ${artifactId}`);
      }
      deps.audit({ action: 'artifact.remove', actor: actor.id, target: artifactId, version: `${name}:${v}` });
    },

    async attach(actor: Principal, name: string, v: string, artifactId: string, input: NewAttachment): Promise<Attachment> {
      const a = await artifact(name, v, artifactId, { published: false });
      await assertKnown(input.blobDigest, input.blobSize);
      await assertIncusMetadata(a, input);
      const now = clock.now();
      const created: Attachment = { id: deps.newId(), artifactId: a.id, ...input, createdAt: now, updatedAt: now };
      await onConflict(store.insertAttachment({ versionId: a.versionId, attachment: created, now }), 'attachment_exists', `artifact ${artifactId} already has an attachment named ${input.name}`);
      deps.audit({ action: 'attachment.add', actor: actor.id, target: created.id, artifact: artifactId, name: input.name, digest: input.blobDigest });
      return created;
    },

    async detach(actor: Principal, name: string, v: string, artifactId: string, attachmentId: string): Promise<void> {
      const a = await artifact(name, v, artifactId, { published: false });
      if (!(await store.deleteAttachment({ versionId: a.versionId, artifactId: a.id, attachmentId, now: clock.now() }))) {
        throw new DomainError('not_found', 'attachment_not_found', `artifact ${artifactId} has no attachment ${attachmentId}`);
      }
      deps.audit({ action: 'attachment.remove', actor: actor.id, target: attachmentId, artifact: artifactId });
    },
  };
}
