import { createSqlMetadataStore } from '../../src/store/sql/sql-metadata-store.ts';
import { openPostgres } from '../../src/store/postgres/postgres-adapter.ts';
import { createSchema } from '../helpers/postgres.ts';
import { describeMetadataStore } from '../suites/metadata-store.suite.ts';

describeMetadataStore('postgres', async () => {
  const schema = await createSchema();
  const open = async () => createSqlMetadataStore(await openPostgres({ url: schema.url }));
  const store = await open();
  return {
    store,
    openPeer: open,
    cleanup: async () => {
      await store.close();
      await schema.drop();
    },
  };
});
