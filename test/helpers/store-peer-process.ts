import { isDomainError } from '../../src/domain/errors.ts';
import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openSqlite } from '../../src/store/sqlite/sqlite-adapter.ts';

// The other end of store-peer.ts: one SQLite store, called over IPC.
const store = createSqlMetadataStore(await openSqlite(process.argv[2]!));
process.on('message', (m: { id: number; method: string; args: unknown[] }) => {
  const fn = (store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[m.method]!;
  fn(...m.args).then(
    (value) => process.send!({ id: m.id, ok: true, value }),
    (e: unknown) => process.send!({ id: m.id, ok: false, error: isDomainError(e) ? { kind: e.kind, code: e.code, detail: e.detail, message: e.message } : { message: String(e) } }),
  );
});
process.send!({ ready: true });
