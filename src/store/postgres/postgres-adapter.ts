import { Kysely, Migrator, PostgresDialect, sql, type DatabaseIntrospector, type PostgresPool } from 'kysely';
import pg from 'pg';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import type { SqlAdapter } from '../sql/adapter.ts';
import { migrationProvider } from '../sql/migrations/index.ts';
import type { Database as Schema } from '../sql/schema.ts';

export interface PostgresOptions {
  url: string;
  /** Connections this process keeps at most. */
  maxConnections?: number;
  /** Waiting for a connection (connect, or a free pool slot) fails after this long. */
  connectTimeoutMs?: number;
  /** A statement that runs longer is cancelled by the server; a reply that takes longer is given up by the client. */
  statementTimeoutMs?: number;
  /** An idle connection that broke (server restart, terminated backend); the pool has already dropped it. */
  onIdleError?: (error: Error) => void;
}

/** SQLSTATEs after which re-running the whole transaction is the documented remedy. */
const RETRYABLE = new Set(['40001', '40P01']);
/** Each round commits at least one of the contending transactions, so this outlasts a crowd of racers. */
const MAX_ATTEMPTS = 20;

/**
 * SQLSTATE classes and codes that mean "the database cannot serve this now": connection
 * exceptions (08), operator intervention such as terminated backends and shutdowns (57P),
 * cancelled statements (57014, our statement timeout), too many connections (53300), a
 * read-only standby (25006).
 */
const UNAVAILABLE_STATE = /^(08...|57P0.|57014|53300|53400|25006)$/;
/** Text PostgreSQL cannot store (U+0000, invalid encoding) or a value past an index's size limit: the input's fault. */
const UNSTORABLE_STATE = new Set(['22021', '22P05', '54000']);
/** Node socket errors and node-postgres' own messages for lost or unobtainable connections. */
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const UNAVAILABLE_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|not queryable|Client was closed|Connection ended/i;

/** int8 (`count(*)`, bigint columns: epoch milliseconds and byte sizes) as a JS number; every value we store is below 2^53. */
const INT8_OID = 20;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Connects to PostgreSQL and applies pending migrations. Several processes starting at once
 * migrate once: kysely's migrator holds an advisory lock while it reads and applies the
 * migration list, and PostgreSQL runs the DDL in one transaction.
 *
 * Write transactions are SERIALIZABLE, so every read-check-write in the shared store code
 * behaves as under SQLite's single writer; a serialization failure or deadlock re-runs the
 * transaction (the store's transaction bodies only run queries, so re-running is safe).
 */
export async function openPostgres(opts: PostgresOptions): Promise<SqlAdapter> {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const statementTimeoutMs = opts.statementTimeoutMs ?? 15_000;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + 5000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'imgsrv',
    types,
  });
  // Without a listener an idle connection's error would crash the process.
  pool.on('error', (error) => opts.onIdleError?.(error));

  const db = new Kysely<Schema>({ dialect: new SchemaScopedPostgresDialect({ pool: discardingBrokenClients(pool) }) });

  const adapter: SqlAdapter = {
    dialect: 'postgres',
    db,
    async transaction(fn) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await db.transaction().setIsolationLevel('serializable').execute(fn);
        } catch (error) {
          if (attempt >= MAX_ATTEMPTS || !RETRYABLE.has(sqlState(error) ?? '')) throw error;
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
        }
      }
    },
    translateError: translatePostgresError,
    close: () => db.destroy(),
  };

  try {
    await migrate(opts.url, connectTimeoutMs);
  } catch (error) {
    await db.destroy();
    throw translatePostgresError(error);
  }
  return adapter;
}

/**
 * Applies pending migrations over a connection of its own, without the statement timeouts of
 * the request pool: waiting for another instance's migration, or a long one, is not a hang.
 * kysely's migrator serialises instances with an advisory lock and runs DDL in a transaction.
 */
async function migrate(url: string, connectTimeoutMs: number): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: connectTimeoutMs, application_name: 'imgsrv-migrate', types });
  pool.on('error', () => undefined); // a lost idle connection fails the next query, which fails the start
  const db = new Kysely<Schema>({ dialect: new SchemaScopedPostgresDialect({ pool }) });
  try {
    const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
    if (!rows[0]?.schema) throw new DomainError('invalid', 'no_schema', "the database URL's search_path names no existing schema for imgsrv's tables");
    const { error } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
    if (error) throw error;
  } finally {
    await db.destroy();
  }
}

/**
 * kysely's PostgreSQL introspector lists the tables of every schema in the database by name,
 * which fails when another schema is dropped meanwhile, and lets the migrator take another
 * schema's migration table for ours. imgsrv's tables live in `current_schema()`; so does this
 * introspector's view.
 */
class SchemaScopedPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    const tables = async () => {
      const { rows } = await sql<{ name: string; schema: string; kind: string }>`
        select c.relname as name, n.nspname as schema, c.relkind as kind
        from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p', 'v')
        order by c.relname`.execute(db);
      return rows.map((r) => ({ name: r.name, schema: r.schema, isView: r.kind === 'v', columns: [] }));
    };
    return {
      getSchemas: async () => (await sql<{ name: string }>`select current_schema() as name`.execute(db)).rows,
      getTables: tables,
      getMetadata: async () => ({ tables: await tables() }),
    };
  }
}

/**
 * kysely releases a connection without saying whether it broke; node-postgres' pool only
 * drops a client it knows to be broken. A client whose query failed with a connection-level
 * error (a reply timeout, above all, leaves it unusable) is released as broken here. While
 * checked out, a client's own `error` event (the server went away between two queries) is
 * ours to handle: unhandled, it would crash the process.
 */
function discardingBrokenClients(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let broken: Error | undefined;
      const onError = (error: Error) => (broken = error);
      client.on('error', onError);
      return {
        async query(text: string, values: readonly unknown[]) {
          if (broken) throw broken;
          try {
            return await client.query(text, values as unknown[]);
          } catch (error) {
            if (isUnavailable(error)) broken = error as Error;
            throw error;
          }
        },
        release: () => {
          client.off('error', onError);
          client.release(broken);
        },
      } as never;
    },
    end: () => pool.end(),
  };
}

const sqlState = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
};

function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_ERRNO.has(code) || UNAVAILABLE_STATE.test(code))) return true;
  if (error instanceof AggregateError) return error.errors.some(isUnavailable);
  return UNAVAILABLE_MESSAGE.test(error.message);
}

export function translatePostgresError(error: unknown): unknown {
  if (isDomainError(error) || !(error instanceof Error)) return error;
  if (sqlState(error) === '23505') {
    return new DomainError('conflict', 'already_exists', 'a record with the same identity already exists', { cause: error });
  }
  if (UNSTORABLE_STATE.has(sqlState(error) ?? '')) {
    return new DomainError('invalid', 'unstorable_value', 'a value cannot be stored: text must not contain U+0000 and must fit the database limits', { cause: error });
  }
  if (isUnavailable(error) || RETRYABLE.has(sqlState(error) ?? '')) {
    return new DomainError('unavailable', 'database_unavailable', 'the metadata database is unavailable; retry later', { cause: error });
  }
  return error;
}
