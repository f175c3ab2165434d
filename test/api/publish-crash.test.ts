import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { draftVersion, waitForJob } from '../helpers/catalog.ts';
import { apiClient } from '../helpers/client.ts';
import { makeDataDir, removeDir, startServer, type ServerHandle } from '../helpers/server.ts';
import { withDatabase } from '../helpers/store.ts';

describe('SIGKILL during a publish job', () => {
  // Killed as the step starts, and after its work but before its success is recorded.
  for (const [step, point] of ['validate_catalog', 'incus_index', 'finalize_publish'].flatMap((s): [string, string][] => [[s, s], [s, `${s}-done`]])) {
    it(`resumes ${step} (killed at ${point}) after a restart and publishes the version exactly once`, async () => {
      const dataDir = await makeDataDir();
      let server: ServerHandle | undefined;
      try {
        server = await startServer({ dataDir, env: { IMGSRV_FAILPOINTS: `publish-${point}` } });
        const api = apiClient(server);
        await draftVersion(api, 'crashy', '1.0');
        const job = await api.post('/v1/images/crashy/versions/1.0/publish');
        await server.waitForOutput(new RegExp(`failpoint reached: publish-${point}\n`));
        const during = await api.get(`/v1/publish-jobs/${job.json.id}`);
        assert.equal(during.json.state, 'running');
        assert.equal(during.json.steps.find((s: { name: string }) => s.name === step).state, 'running');
        assert.equal((await api.get('/v1/images/crashy/versions/1.0')).json.version.state, 'publishing');
        await server.kill();

        server = await startServer({ dataDir, token: server.token });
        const restarted = apiClient(server);
        const done = await waitForJob(restarted, job.json.id);
        assert.equal(done.state, 'succeeded', JSON.stringify(done));
        const order = ['validate_catalog', 'incus_index', 'finalize_publish'];
        for (const s of done.steps as { name: string; attempt_count: number; state: string }[]) {
          const expected = order.indexOf(s.name) < order.indexOf(step) ? 1 : s.name === step ? 2 : 1;
          assert.equal(s.attempt_count, expected, `${s.name} ran ${s.attempt_count} times`);
          assert.equal(s.state, 'succeeded');
        }
        const manifest = await restarted.get('/v1/images/crashy/versions/1.0');
        assert.equal(manifest.json.version.state, 'published');
        assert.equal((await restarted.post('/v1/images/crashy/versions/1.0/publish')).json.id, job.json.id);
        await server.stop();
        await withDatabase(dataDir, async (db) => {
          assert.equal((await db.selectFrom('publish_jobs').select('id').execute()).length, 1, 'one publish job');
          const unfinished = await db.selectFrom('jobs').select('id').where('kind', '=', 'publish').where('state', '!=', 'succeeded').execute();
          assert.equal(unfinished.length, 0, 'no durable job left behind');
        });
      } finally {
        await server?.stop();
        await removeDir(dataDir);
      }
    });
  }
});
