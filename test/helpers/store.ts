import { join } from 'node:path';
import { hashSecret } from '../../src/auth/tokens.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openSqlite } from '../../src/store/sqlite/sqlite-adapter.ts';
import { newToken } from './server.ts';
import { tokenParts } from '../../src/auth/tokens.ts';

/** Opens the metadata store of a (running) server's data dir; SQLite in WAL mode allows it. */
export async function withStore<T>(dataDir: string, fn: (store: MetadataStore) => Promise<T>): Promise<T> {
  const store = createSqlMetadataStore(await openSqlite(join(dataDir, 'metadata.sqlite')));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/**
 * Creates a principal with the given roles and an API token for it, straight in the store
 * (the management API is a later issue). Returns the plaintext token.
 */
export async function seedPrincipal(dataDir: string, opts: { roles: string[]; expiresInMs?: number; revoked?: boolean }): Promise<string> {
  const plaintext = newToken();
  const { id, secret } = tokenParts(plaintext);
  const now = new Date();
  await withStore(dataDir, async (store) => {
    const principalId = `p-${id.slice(0, 8)}`;
    await store.insertPrincipal({ id: principalId, kind: 'service', displayName: 'test principal', attributes: {}, now });
    for (const roleId of opts.roles) await store.grantRole({ principalId, roleId, now });
    await store.insertApiToken({
      id,
      principalId,
      name: 'test',
      secretHash: hashSecret(secret),
      expiresAt: new Date(now.getTime() + (opts.expiresInMs ?? 3_600_000)),
      revokedAt: opts.revoked ? now : undefined,
      createdAt: now,
    });
  });
  return plaintext;
}
