import { join } from 'node:path';
import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openSqlite } from '../../src/store/sqlite/sqlite-adapter.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { describeMetadataStore } from '../suites/metadata-store.suite.ts';

describeMetadataStore('sqlite', async () => {
  const dir = await makeDataDir();
  const store = createSqlMetadataStore(await openSqlite(join(dir, 'metadata.sqlite')));
  return {
    store,
    cleanup: async () => {
      await store.close();
      await removeDir(dir);
    },
  };
});
