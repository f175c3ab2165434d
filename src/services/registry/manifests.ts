import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Cas } from '../../blobs/cas.ts';
import type { Principal } from '../../domain/auth.ts';
import type { Digest } from '../../domain/digest.ts';
import { DomainError } from '../../domain/errors.ts';
import { MAX_MANIFEST_BYTES, OCI_INDEX, parseManifest, type Descriptor, type StoredManifest } from '../../domain/oci.ts';
import type { MetadataStore } from '../../store/metadata-store.ts';
import type { AuditLog } from '../audit.ts';
import type { ServiceDeps } from '../deps.ts';
import { digestOf, manifestReference, repositoryName } from './names.ts';
import type { Projection } from './projection.ts';

export interface ManifestServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  store: Pick<MetadataStore, 'putManifest' | 'getManifest' | 'heldManifests' | 'linkedBlobs' | 'resolveTag' | 'deleteManifest' | 'deleteTag' | 'listReferrers' | 'recordBlob'>;
  blobs: Pick<Cas, 'storeStream' | 'open'>;
  projection: Projection;
  audit: AuditLog;
}

/** A manifest as it is served: its media type and its exact bytes. */
export interface ServedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

export type ManifestService = ReturnType<typeof createManifestService>;

const sha256 = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Refuses changes to a repository that projects an imgsrv image (it is read-only). */
export async function assertWritable(projection: Projection, repository: string): Promise<void> {
  if (await projection.isProjected(repository)) {
    throw new DomainError('forbidden', 'denied', `${repository} is the read-only projection of the published imgsrv image ${repository}; publish through /v1 instead`);
  }
}

/**
 * Manifests and tags of OCI repositories, and the referrers API. A manifest is stored exactly
 * as sent (its digest is of those bytes) in the CAS, after every blob and manifest it
 * references was found in the repository; a `subject` need not exist (it is answered with
 * `OCI-Subject` either way).
 */
export function createManifestService(deps: ManifestServiceDeps) {
  const { store, blobs, projection, clock } = deps;

  async function read(stored: { digest: Digest; mediaType: string }): Promise<ServedManifest> {
    const reader = await blobs.open(stored.digest);
    const chunks: Buffer[] = [];
    try {
      const buffer = Buffer.allocUnsafe(64 * 1024);
      for (let n; (n = await reader.read(buffer)) > 0; ) chunks.push(Buffer.from(buffer.subarray(0, n)));
    } finally {
      await reader.close();
    }
    return { digest: stored.digest, mediaType: stored.mediaType, bytes: Buffer.concat(chunks) };
  }

  const unknown = (repository: string, reference: string) => new DomainError('not_found', 'manifest_unknown', `repository ${repository} has no manifest ${reference}`);

  return {
    /** @throws forbidden (`denied`) for a projected repository; invalid (`manifest_invalid`, `digest_invalid`, `manifest_blob_unknown`) */
    async put(actor: Principal, input: { repository: string; reference: string; bytes: Buffer; contentType?: string; signal: AbortSignal }): Promise<{ digest: Digest; subject?: Digest }> {
      const repository = repositoryName(input.repository);
      await assertWritable(projection, repository);
      const ref = manifestReference(input.reference, 'write');
      if (input.bytes.length > MAX_MANIFEST_BYTES) throw new DomainError('payload_too_large', 'manifest_too_large', `a manifest may have at most ${MAX_MANIFEST_BYTES} bytes`);
      const digest = sha256(input.bytes);
      if ('digest' in ref && ref.digest !== digest) throw new DomainError('invalid', 'digest_invalid', `the manifest's bytes have digest ${digest}, not ${ref.digest}`);
      const parsed = parseManifest(input.bytes, input.contentType);
      const linked = await store.linkedBlobs(repository, parsed.blobs.map((d) => d.digest));
      const held = await store.heldManifests(repository, parsed.manifests.map((d) => d.digest));
      const missing = [...parsed.blobs.filter((d) => !linked.has(d.digest)), ...parsed.manifests.filter((d) => !held.has(d.digest))];
      if (missing.length > 0) {
        throw new DomainError('invalid', 'manifest_blob_unknown', `the manifest references ${missing.map((d) => d.digest).join(', ')}, which repository ${repository} does not hold; push ${missing.length > 1 ? 'them' : 'it'} first`);
      }
      const stored = await blobs.storeStream({ body: Readable.from([input.bytes]), maxBytes: input.bytes.length, areaId: deps.newId(), signal: input.signal });
      await store.recordBlob({ digest, size: input.bytes.length, now: clock.now() });
      const manifest = { repository, digest, mediaType: parsed.mediaType, size: input.bytes.length, artifactType: parsed.artifactType, subject: parsed.subject?.digest, annotations: parsed.annotations };
      await store.putManifest({ manifest, tag: 'tag' in ref ? ref.tag : undefined, now: clock.now() });
      deps.audit({ action: 'oci.manifest.put', actor: actor.id, target: `${repository}@${digest}`, ...('tag' in ref && { tag: ref.tag }), outcome: stored.outcome });
      return { digest, subject: parsed.subject?.digest };
    },

    /** @throws not_found (`manifest_unknown`) */
    async get(input: { repository: string; reference: string }): Promise<ServedManifest> {
      const repository = repositoryName(input.repository);
      const ref = manifestReference(input.reference);
      const projected = await projection.manifest(repository, ref);
      if (projected) return projected;
      const digest = 'digest' in ref ? ref.digest : await store.resolveTag(repository, ref.tag);
      const stored = digest && (await store.getManifest(repository, digest));
      if (!stored) throw unknown(repository, input.reference);
      return read(stored);
    },

    /**
     * By digest: removes the manifest and every tag pointing at it. By tag: removes the tag.
     * @throws not_found (`manifest_unknown`); forbidden (`denied`) for a projected repository
     */
    async remove(actor: Principal, input: { repository: string; reference: string }): Promise<void> {
      const repository = repositoryName(input.repository);
      await assertWritable(projection, repository);
      const ref = manifestReference(input.reference);
      const removed = 'digest' in ref ? await store.deleteManifest({ repository, digest: ref.digest }) : await store.deleteTag({ repository, tag: ref.tag });
      if (!removed) throw unknown(repository, input.reference);
      deps.audit({ action: 'oci.manifest.delete', actor: actor.id, target: `${repository}:${input.reference}` });
    },

    /**
     * "The referrers list": an OCI image index of the manifests whose subject is `digest`, each
     * described with its artifact type and its own annotations; empty for an unknown digest.
     * With `artifactType`, only those of that type (`filtered`).
     */
    async referrers(input: { repository: string; digest: string; artifactType?: string }): Promise<{ bytes: Buffer; filtered: boolean }> {
      const repository = repositoryName(input.repository);
      const subject = digestOf(input.digest);
      const all = await store.listReferrers({ repository, subject });
      const chosen = input.artifactType === undefined ? all : all.filter((m) => m.artifactType === input.artifactType);
      const manifests: Descriptor[] = chosen.map((m: StoredManifest) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.size,
        ...(m.artifactType && { artifactType: m.artifactType }),
        ...(m.annotations && { annotations: m.annotations }),
      }));
      return { bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })), filtered: input.artifactType !== undefined };
    },
  };
}
