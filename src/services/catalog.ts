import type { Principal } from '../domain/auth.ts';
import { groupAttachments, type Image, type ImageVersion, type Manifest } from '../domain/catalog.ts';
import type { AuditLog } from './audit.ts';
import { DomainError } from '../domain/errors.ts';
import { onConflict } from './conflict.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { ServiceDeps } from './deps.ts';
import { createRevisionCache } from './revision-cache.ts';

export interface CatalogServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  audit: AuditLog;
  store: Pick<
    MetadataStore,
    | 'insertImage'
    | 'getImage'
    | 'listPublishedImages'
    | 'insertVersion'
    | 'getVersion'
    | 'getVersionById'
    | 'listPublishedVersions'
    | 'listArtifacts'
    | 'listAttachments'
    | 'getAlias'
    | 'catalogRevision'
  >;
}

export type CatalogService = ReturnType<typeof createCatalogService>;

/** Images, versions, manifests and refs: the catalog as readers and drafters see it. */
export function createCatalogService(deps: CatalogServiceDeps) {
  const { store, clock } = deps;
  // The public reads (published images, versions, manifests, refs) change only with the revision.
  const cached = createRevisionCache(() => store.catalogRevision());

  async function image(name: string): Promise<Image> {
    const found = await store.getImage(name);
    if (!found) throw new DomainError('not_found', 'image_not_found', `image ${name} does not exist`);
    return found;
  }

  async function version(name: string, v: string): Promise<{ image: Image; version: ImageVersion }> {
    const img = await image(name);
    const found = await store.getVersion(img.id, v);
    if (!found) throw new DomainError('not_found', 'version_not_found', `image ${name} has no version ${v}`);
    return { image: img, version: found };
  }

  /** An image as the public sees it: only once it has a published version. */
  async function published(name: string): Promise<{ image: Image; versions: ImageVersion[] }> {
    const img = await image(name);
    const versions = await store.listPublishedVersions(img.id);
    if (versions.length === 0) throw new DomainError('not_found', 'image_not_published', `image ${name} has no published version yet`);
    return { image: img, versions };
  }

  async function manifest(img: Image, v: ImageVersion): Promise<Manifest> {
    const artifacts = await store.listArtifacts(v.id);
    const attachments = await store.listAttachments(artifacts.map((a) => a.id));
    return { image: img, version: v, artifacts: groupAttachments(artifacts, attachments) };
  }

  return {
    image,
    version,
    published,

    async createImage(actor: Principal, input: { name: string; displayName?: string; description?: string }): Promise<Image> {
      const now = clock.now();
      const created: Image = { id: deps.newId(), name: input.name, displayName: input.displayName, description: input.description, createdAt: now, updatedAt: now };
      await onConflict(store.insertImage(created), 'image_exists', `image ${input.name} already exists`);
      deps.audit({ action: 'image.create', actor: actor.id, target: created.name });
      return created;
    },

    /** "Image namespaces that have at least one published version." */
    listImages: () => cached('images', () => store.listPublishedImages()),

    /** "Get one image namespace with a published version." */
    publishedImage: async (name: string) => (await cached(`published:${name}`, () => published(name))).image,

    /** "List published versions for an image" (404 until one is published, like the image). */
    listVersions: async (name: string) => (await cached(`published:${name}`, () => published(name))).versions,

    async createDraft(actor: Principal, name: string, v: string): Promise<ImageVersion> {
      const img = await image(name);
      const now = clock.now();
      const draft: ImageVersion = { id: deps.newId(), imageId: img.id, version: v, state: 'draft', createdAt: now, updatedAt: now };
      await onConflict(store.insertVersion(draft), 'version_exists', `image ${name} already has a version ${v}`);
      deps.audit({ action: 'version.create', actor: actor.id, target: `${name}:${v}` });
      return draft;
    },

    /** The exact draft, publishing or published manifest (a published one from the cache). */
    async manifest(name: string, v: string): Promise<Manifest> {
      return cached(
        `manifest:${name}:${v}`,
        async () => {
          const found = await version(name, v);
          return manifest(found.image, found.version);
        },
        (m) => m.version.state === 'published',
      );
    },

    /**
     * A published manifest by ref: "an exact published version wins, otherwise the alias of
     * that name; a draft never shadows an alias."
     */
    resolve: (name: string, ref: string): Promise<Manifest> => cached(`ref:${name}:${ref}`, () => resolve(name, ref)),
  };

  async function resolve(name: string, ref: string): Promise<Manifest> {
    const img = await image(name);
    const exact = await store.getVersion(img.id, ref);
    if (exact?.state === 'published') return manifest(img, exact);
    const alias = await store.getAlias(img.id, ref);
    const target = alias && (await store.getVersionById(alias.versionId));
    if (target) return manifest(img, target);
    throw new DomainError('not_found', 'ref_not_found', `image ${name} has no published version or alias named ${ref}`);
  }
}
