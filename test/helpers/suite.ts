import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { apiClient, type ApiClient } from './client.ts';
import { loggedErrors, removeDir, startServer, type ServerHandle, type ServerOptions } from './server.ts';

/**
 * One server for the enclosing suite: started before its tests, stopped and its data removed
 * after them. Teardown also checks that the server logged no error (nothing answered 500).
 * Use the returned object's fields inside tests (they are set once the suite starts).
 */
export function useServer(opts: ServerOptions = {}): { server: ServerHandle; api: ApiClient } {
  const ctx = {} as { server: ServerHandle; api: ApiClient };
  before(async () => {
    ctx.server = await startServer(opts);
    ctx.api = apiClient(ctx.server);
  });
  after(async () => {
    if (!ctx.server) return;
    await ctx.server.stop();
    if (!opts.dataDir) await removeDir(ctx.server.dataDir);
    assert.deepEqual(loggedErrors(ctx.server), [], 'the server logged errors');
  });
  return ctx;
}
