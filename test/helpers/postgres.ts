import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * The PostgreSQL every development and CI machine runs (trust auth, database `test`).
 * IMGSRV_TEST_PG_URL points the tests at another server.
 */
export const PG_URL = process.env.IMGSRV_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const PREFIX = 'imgsrv_test_';
/** Schemas of runs that died before cleaning up are dropped once they are this old. */
const STALE_AFTER_S = 6 * 3600;

/** A connection URL whose `search_path` is `schema`, so every unqualified table lives there. */
export const schemaUrl = (schema: string, base = PG_URL) => {
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.href;
};

export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

let sweptStale = false;

/**
 * A new, empty schema of its own for one test (or one server), so concurrent runs never
 * collide; `drop()` removes it with everything in it.
 */
export async function createSchema(name = `${PREFIX}${Math.floor(Date.now() / 1000)}_${randomBytes(5).toString('hex')}`): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  if (!sweptStale) {
    sweptStale = true;
    const rows = await adminQuery<{ nspname: string }>('select nspname from pg_namespace where nspname like $1', [`${PREFIX}%`]);
    const cutoff = Date.now() / 1000 - STALE_AFTER_S;
    for (const { nspname } of rows) {
      const born = Number(/^imgsrv_test_(\d+)_/.exec(nspname)?.[1]);
      if (born < cutoff) await adminQuery(`drop schema if exists "${nspname}" cascade`);
    }
  }
  await adminQuery(`create schema "${name}"`);
  return { name, url: schemaUrl(name), drop: () => adminQuery(`drop schema if exists "${name}" cascade`).then(() => undefined) };
}
