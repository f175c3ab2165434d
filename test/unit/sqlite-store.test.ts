import { join } from 'node:path';
import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openSqlite } from '../../src/store/sqlite/sqlite-adapter.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { sqlitePeer } from '../helpers/store-peer.ts';
import { describeMetadataStore } from '../suites/metadata-store.suite.ts';

describeMetadataStore('sqlite', async () => {
  const dir = await makeDataDir();
  const adapter = await openSqlite(join(dir, 'metadata.sqlite'));
  const store = createSqlMetadataStore(adapter);
  return {
    store,
    // A second server instance: another process on the same file (see store-peer.ts).
    openPeer: () => sqlitePeer(join(dir, 'metadata.sqlite')),
    cleanup: async () => {
      await store.close();
      await removeDir(dir);
    },
  };
});
