import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001-initial.ts';

/** Numbered migrations in order. Append only; a landed migration is never edited. */
export const migrations: Record<string, Migration> = {
  '0001-initial': m0001,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
