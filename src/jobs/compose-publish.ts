import type { Principal } from '../domain/auth.ts';
import { INCUS_METADATA_ATTACHMENT, type Manifest } from '../domain/catalog.ts';
import type { ComposeTarget, ComposedFile } from '../domain/compose.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError, isDomainError } from '../domain/errors.ts';
import type { AliasService } from '../services/aliases.ts';
import type { ArtifactService } from '../services/artifacts.ts';
import type { CatalogService } from '../services/catalog.ts';
import type { PublishService } from '../services/publish.ts';

/** The catalog services a compose publishes through, as `/v1` does. */
export interface CatalogWriters {
  catalog: Pick<CatalogService, 'createImage' | 'createDraft' | 'manifest'>;
  artifacts: Pick<ArtifactService, 'add' | 'attach'>;
  publish: Pick<PublishService, 'publish' | 'job'>;
  aliases: Pick<AliasService, 'put'>;
}

const PUBLISH_POLL_MS = 250;

/** What each built image becomes: an artifact (format, media type) and its incus.tar.xz. */
const IMAGES = [
  { primary: 'disk', metadata: 'vm-metadata', format: 'qcow2', mediaType: 'application/x-qemu-disk' },
  { primary: 'squashfs', metadata: 'container-metadata', format: 'squashfs', mediaType: 'application/vnd.squashfs' },
] as const;

const ignoreConflict = (e: unknown) => {
  if (isDomainError(e) && e.kind === 'conflict') return undefined;
  throw e;
};

/**
 * Makes the stored images a new draft of `target` (image created if needed) with each artifact
 * and its `incus.tar.xz`, publishes it and moves the alias, as the principal who asked. A
 * version that exists already is a conflict (`version_exists`), unless the compose is
 * `resuming` after a crash: then what it made before (the draft, an artifact with its
 * attachment) is kept, and a version it published already is only aliased.
 */
export async function publishComposed(input: { catalog: CatalogWriters; actor: Principal; target: ComposeTarget; files: ComposedFile[]; resuming: boolean; log: (line: string) => void; signal: AbortSignal }): Promise<void> {
  const { catalog: c, actor, target, files } = input;
  const file = (kind: ComposedFile['kind']) => files.find((f) => f.kind === kind);
  await c.catalog.createImage(actor, { name: target.image }).catch(ignoreConflict);
  const draft = c.catalog.createDraft(actor, target.image, target.version);
  await (input.resuming ? draft.catch(ignoreConflict) : draft);
  let manifest: Manifest = await c.catalog.manifest(target.image, target.version);
  if (manifest.version.state === 'draft') {
    for (const image of IMAGES) {
      const primary = file(image.primary);
      const metadata = file(image.metadata);
      if (!primary || !metadata) continue;
      const existing = manifest.artifacts.find((a) => a.artifact.format === image.format);
      if (existing && existing.artifact.primaryBlobDigest !== primary.digest) {
        throw new DomainError('conflict', 'version_exists', `version ${target.version} of ${target.image} already has a ${image.format} artifact of other bytes`);
      }
      const artifact = existing?.artifact ?? (await c.artifacts.add(actor, target.image, target.version, { variant: 'default', operatingSystem: 'debian', architecture: 'x86_64', format: image.format, primaryBlobDigest: primary.digest as Digest, primaryBlobSize: primary.size, primaryMediaType: image.mediaType }));
      if (!existing?.attachments.some((x) => x.name === INCUS_METADATA_ATTACHMENT)) {
        await c.artifacts.attach(actor, target.image, target.version, artifact.id, { name: INCUS_METADATA_ATTACHMENT, mediaType: 'application/x-xz', blobDigest: metadata.digest as Digest, blobSize: metadata.size });
      }
      input.log(`== ${image.format} artifact ${artifact.id} in ${target.image}:${target.version}`);
    }
    manifest = await c.catalog.manifest(target.image, target.version);
  }
  if (!target.publish) return;
  if (manifest.version.state !== 'published') {
    const job = await c.publish.publish(actor, target.image, target.version);
    input.log(`== publishing: publish job ${job.id}`);
    for (let current = job; current.state !== 'succeeded'; current = await c.publish.job(job.id)) {
      if (current.state === 'failed') throw new DomainError('invalid', 'publish_failed', `publish job ${job.id} failed at ${current.failedStep}: ${current.reason}`);
      input.signal.throwIfAborted();
      await new Promise((resolve) => setTimeout(resolve, PUBLISH_POLL_MS));
    }
  }
  if (target.alias) {
    await c.aliases.put(actor, target.image, target.alias, target.version);
    input.log(`== alias ${target.alias} → ${target.version}`);
  }
}
