import { sql } from 'kysely';
import { decorate } from '../../lib/decorate.ts';
import type { MetadataStore } from '../metadata-store.ts';
import type { SqlAdapter } from './adapter.ts';
import { sqlAuth } from './auth.ts';
import { sqlCatalog } from './catalog.ts';
import { sqlCompose } from './compose.ts';
import { sqlFeed } from './feed.ts';
import { sqlPublish } from './publish.ts';
import { sqlJobs } from './jobs.ts';
import { sqlOidc } from './oidc.ts';
import { sqlRegistry } from './registry.ts';
import { sqlUploads } from './uploads.ts';

/**
 * The `MetadataStore` for every SQL dialect: repositories built on kysely, with each call's
 * driver errors translated by the adapter, so callers only ever see `DomainError`s.
 */
export function createSqlMetadataStore(adapter: SqlAdapter): MetadataStore {
  const repositories = {
    ...sqlUploads(adapter),
    ...sqlJobs(adapter),
    ...sqlAuth(adapter),
    ...sqlOidc(adapter),
    ...sqlCatalog(adapter),
    ...sqlPublish(adapter),
    ...sqlFeed(adapter),
    ...sqlRegistry(adapter),
    ...sqlCompose(adapter),
    async ping() {
      await sql`select 1`.execute(adapter.db);
    },
    close: () => adapter.close(),
  } satisfies MetadataStore;
  return translated(repositories, adapter);
}

const translated = (store: MetadataStore, adapter: SqlAdapter): MetadataStore =>
  decorate(store, async (_method, call) => {
    try {
      return await call();
    } catch (error) {
      throw adapter.translateError(error);
    }
  });
