import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-initial.ts';
import * as m0002 from './0002-upload-part-size.ts';
import * as m0003 from './0003-catalog.ts';
import * as m0004 from './0004-auth-management.ts';
import * as m0005 from './0005-catalog-revision.ts';
import * as m0006 from './0006-part-writes.ts';
import * as m0007 from './0007-registry.ts';
import * as m0008 from './0008-composes.ts';

/** Numbered migrations in order. Append only; a landed migration is never edited. */
export const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
  '0002-upload-part-size': m0002,
  '0003-catalog': m0003,
  '0004-auth-management': m0004,
  '0005-catalog-revision': m0005,
  '0006-part-writes': m0006,
  '0007-registry': m0007,
  '0008-composes': m0008,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
