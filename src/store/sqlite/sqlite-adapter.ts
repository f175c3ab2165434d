import Database from 'better-sqlite3';
import { Kysely, Migrator, sql, SqliteDialect, type SqliteDatabase } from 'kysely';
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
  const db = new Kysely<Schema>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) });

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

/** Statements kept prepared: the store's queries are a fixed set of SQL texts. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * kysely prepares every query anew, which is a fifth of a catalog read's CPU. The store's
 * SQL texts repeat (values are bound parameters), so prepared statements are kept, least
 * recently used dropped first. Reusing one is safe: kysely runs each to completion synchronously.
 */
function withStatementCache(database: Database.Database): SqliteDatabase {
  const statements = new Map<string, Database.Statement>();
  return {
    close: () => database.close(),
    prepare(text: string) {
      let statement = statements.get(text);
      if (statement) statements.delete(text);
      else {
        statement = database.prepare(text);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      }
      statements.set(text, statement);
      return statement;
    },
  };
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
