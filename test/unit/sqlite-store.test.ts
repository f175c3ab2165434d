import { join } from 'node:path';
import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openSqlite } from '../../src/store/sqlite/sqlite-adapter.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { describeMetadataStore } from '../suites/metadata-store.suite.ts';

describeMetadataStore('sqlite', async () => {
  const dir = await makeDataDir();
  const adapter = await openSqlite(join(dir, 'metadata.sqlite'));
  const store = createSqlMetadataStore(adapter);
  return {
    store,
    // better-sqlite3 is synchronous: a second connection in this process would block the
    // thread on the first one's write lock. Racing callers share the one connection, as the
    // requests of one server process do; separate processes are covered by the server tests.
    openPeer: async () => createSqlMetadataStore({ ...adapter, close: async () => undefined }),
    cleanup: async () => {
      await store.close();
      await removeDir(dir);
    },
  };
});
