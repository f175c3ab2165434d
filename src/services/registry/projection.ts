import { createHash } from 'node:crypto';
import type { Manifest } from '../../domain/catalog.ts';
import type { Digest } from '../../domain/digest.ts';
import { isDomainError } from '../../domain/errors.ts';
import { EMPTY_JSON_DIGEST, OCI_EMPTY, OCI_MANIFEST, type Descriptor } from '../../domain/oci.ts';
import type { CatalogService } from '../catalog.ts';

/**
 * Every published imgsrv version, read-only, as an OCI artifact: repository = image name,
 * tag = version or alias. Its manifest (built, never stored: deterministic bytes, so the same
 * digest on every instance) has `artifactType` IMGSRV_VERSION_ARTIFACT, the empty config, and
 * one layer per artifact's primary blob and per attachment, titled with the file name a
 * download would have, so `oras pull` writes them as files.
 */
export const IMGSRV_VERSION_ARTIFACT = 'application/vnd.imgsrv.version.v1+json';

const TITLE = 'org.opencontainers.image.title';

export interface ProjectedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
  layers: Descriptor[];
}

/** The OCI manifest of a published version. */
export function projectVersion(m: Manifest): ProjectedManifest {
  const base = (a: Manifest['artifacts'][number]['artifact']) => `${m.image.name}_${m.version.version}_${a.operatingSystem}_${a.architecture}_${a.variant}`;
  const single = m.artifacts.length === 1;
  const layers: Descriptor[] = m.artifacts.flatMap(({ artifact: a, attachments }) => [
    {
      mediaType: a.primaryMediaType,
      digest: a.primaryBlobDigest,
      size: a.primaryBlobSize,
      annotations: { [TITLE]: `${base(a)}.${a.format}`, 'dev.imgsrv.artifact.id': a.id, 'dev.imgsrv.artifact.format': a.format, 'dev.imgsrv.artifact.architecture': a.architecture, 'dev.imgsrv.artifact.os': a.operatingSystem, 'dev.imgsrv.artifact.variant': a.variant },
    },
    ...attachments.map((x) => ({
      mediaType: x.mediaType,
      digest: x.blobDigest,
      size: x.blobSize,
      annotations: { [TITLE]: single ? x.name : `${base(a)}.${x.name}`, 'dev.imgsrv.attachment.of': a.id },
    })),
  ]);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: IMGSRV_VERSION_ARTIFACT,
    config: { mediaType: OCI_EMPTY, digest: EMPTY_JSON_DIGEST, size: 2 },
    layers,
    annotations: {
      'org.opencontainers.image.title': m.image.name,
      'org.opencontainers.image.version': m.version.version,
      ...(m.version.publishedAt && { 'org.opencontainers.image.created': m.version.publishedAt.toISOString() }),
    },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, mediaType: OCI_MANIFEST, bytes, layers };
}

export type Projection = ReturnType<typeof createProjection>;

/** The catalog seen through the projection. */
export function createProjection(deps: { catalog: Pick<CatalogService, 'published' | 'resolve' | 'manifest'>; aliases: (name: string) => Promise<string[]> }) {
  const notFound = (e: unknown) => {
    if (isDomainError(e) && e.kind === 'not_found') return undefined;
    throw e;
  };
  /** Published versions of the image, or undefined when `name` is no published imgsrv image. */
  const published = (name: string) => deps.catalog.published(name).catch(notFound);
  /** Whether `name` is an imgsrv image with a published version (its repository is read-only). */
  const isProjected = async (name: string) => (await published(name)) !== undefined;
  /** Every published version of the image, projected. */
  async function all(name: string): Promise<ProjectedManifest[]> {
    const image = await published(name);
    if (!image) return [];
    return Promise.all(image.versions.map(async (v) => projectVersion(await deps.catalog.manifest(name, v.version))));
  }

  return {
    isProjected,
    all,

    /** Versions and aliases of a projected repository, or undefined. */
    async tags(name: string): Promise<string[] | undefined> {
      const image = await published(name);
      if (!image) return undefined;
      return [...new Set([...image.versions.map((v) => v.version), ...(await deps.aliases(name))])].sort();
    },

    /** The manifest for a version or alias, or for a digest one of the image's versions has. */
    async manifest(name: string, ref: { tag: string } | { digest: Digest }): Promise<ProjectedManifest | undefined> {
      if ('tag' in ref) {
        const m = await deps.catalog.resolve(name, ref.tag).catch(notFound);
        return m && projectVersion(m);
      }
      return (await all(name)).find((p) => p.digest === ref.digest);
    },

    /** Whether a projected repository serves the blob (a layer of one of its versions, or the empty config). */
    async servesBlob(name: string, digest: Digest): Promise<boolean> {
      if (digest === EMPTY_JSON_DIGEST) return isProjected(name);
      return (await all(name)).some((p) => p.layers.some((l) => l.digest === digest));
    },
  };
}
