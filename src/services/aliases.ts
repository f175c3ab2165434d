import type { Principal } from '../domain/auth.ts';
import type { Alias } from '../domain/catalog.ts';
import type { AuditLog } from './audit.ts';
import { DomainError } from '../domain/errors.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { CatalogService } from './catalog.ts';
import type { ServiceDeps } from './deps.ts';

export interface AliasServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  audit: AuditLog;
  store: Pick<MetadataStore, 'putAlias' | 'getAlias' | 'listAliases' | 'deleteAlias'>;
  catalog: Pick<CatalogService, 'image' | 'version' | 'published'>;
}

export type AliasService = ReturnType<typeof createAliasService>;

/**
 * Aliases are mutable pointers to published versions. Moving one is an explicit operator
 * action: any published version, older ones included; nothing automatic ever moves an alias.
 */
export function createAliasService(deps: AliasServiceDeps) {
  const { store, catalog } = deps;
  return {
    async put(actor: Principal, name: string, alias: string, v: string): Promise<Alias> {
      const { image, version } = await catalog.version(name, v);
      const moved = await store.putAlias({ id: deps.newId(), imageId: image.id, alias, versionId: version.id, now: deps.clock.now() });
      deps.audit({ action: 'alias.put', actor: actor.id, target: `${name}:${alias}`, version: v });
      return moved;
    },

    async get(name: string, alias: string): Promise<Alias> {
      const image = await catalog.image(name);
      const found = await store.getAlias(image.id, alias);
      if (!found) throw new DomainError('not_found', 'alias_not_found', `image ${name} has no alias ${alias}`);
      return found;
    },

    /** Aliases of an image (404 until it has a published version, like the image). */
    async list(name: string): Promise<Alias[]> {
      return store.listAliases((await catalog.published(name)).image.id);
    },

    async remove(actor: Principal, name: string, alias: string): Promise<void> {
      const image = await catalog.image(name);
      if (!(await store.deleteAlias(image.id, alias, deps.clock.now()))) throw new DomainError('not_found', 'alias_not_found', `image ${name} has no alias ${alias}`);
      deps.audit({ action: 'alias.delete', actor: actor.id, target: `${name}:${alias}` });
    },
  };
}
