import Database from 'better-sqlite3';
import { Kysely, Migrator, sql, SqliteDialect } from 'kysely';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import type { SqlAdapter } from '../sql/adapter.ts';
import { migrationProvider } from '../sql/migrations/index.ts';
import type { Database as Schema } from '../sql/schema.ts';

/** SQLite error codes that mean the database file cannot be used right now. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL)/;

/**
 * Opens (creating if needed) a SQLite database in WAL mode and applies pending migrations.
 * Write transactions use BEGIN IMMEDIATE so that several processes on one file serialise
 * on the write lock instead of failing when a reader upgrades.
 */
export async function openSqlite(file: string): Promise<SqlAdapter> {
  const database = new Database(file);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 5000');
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database }) });

  const adapter: SqlAdapter = {
    dialect: 'sqlite',
    db,
    transaction: (fn) =>
      db.connection().execute(async (conn) => {
        await sql`begin immediate`.execute(conn);
        try {
          const result = await fn(conn);
          await sql`commit`.execute(conn);
          return result;
        } catch (error) {
          if (database.inTransaction) await sql`rollback`.execute(conn);
          throw error;
        }
      }),
    translateError: translateSqliteError,
    close: () => db.destroy(),
  };

  const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
  if (error) {
    await db.destroy();
    throw error;
  }
  return adapter;
}

export function translateSqliteError(error: unknown): unknown {
  if (isDomainError(error) || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string') return error;
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new DomainError('conflict', 'already_exists', 'a record with the same identity already exists', { cause: error });
  }
  if (UNAVAILABLE.test(code)) {
    return new DomainError('unavailable', 'database_unavailable', 'the metadata database is unavailable; retry later', { cause: error });
  }
  return error;
}
