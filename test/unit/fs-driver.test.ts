import { createFsDriver } from '../../src/blobs/fs/fs-driver.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { describeByteDriver } from '../suites/byte-driver.suite.ts';

describeByteDriver('filesystem', async () => {
  const root = await makeDataDir();
  return { driver: await createFsDriver({ root }), cleanup: () => removeDir(root) };
});
