import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * What differs between SQL dialects, and nothing more. The shared store code builds every
 * query with kysely; an adapter supplies the connection, the write-transaction discipline
 * and the translation of driver errors into `DomainError`s.
 */
export interface SqlAdapter {
  readonly dialect: 'sqlite' | 'postgres';
  readonly db: Kysely<Database>;
  /**
   * Runs `fn` in one write transaction and commits it, or rolls back when it throws.
   * `fn` may only run queries on `tx`: it must never await other I/O.
   */
  transaction<T>(fn: (tx: Kysely<Database>) => Promise<T>): Promise<T>;
  /** Driver error → `DomainError` (`conflict` for unique violations, `unavailable` for lost connections); anything else unchanged. */
  translateError(error: unknown): unknown;
  close(): Promise<void>;
}
