import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { at } from './common.ts';

const compose = (over: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  principalId: 'p-1',
  request: { distribution: 'debian-12', packages: ['tree'] },
  target: { image: 'debian-12', version: '1.0', publish: true, alias: 'latest' },
  ...over,
});

/** Composes and their logs (store/compose-repository.ts). */
export function describeComposeCases(store: () => MetadataStore): void {
  describe('composes', () => {
    it('inserts a pending compose together with its build job', async () => {
      const c = compose();
      const jobId = randomUUID();
      await store().insertCompose({ compose: c, job: { id: jobId, kind: 'compose-test', payload: { compose_id: c.id } }, now: at(1) });
      assert.deepEqual(await store().getCompose(c.id), { ...c, state: 'pending', cancelRequested: false, createdAt: at(1), updatedAt: at(1) });
      const job = await store().claimJob({ kinds: ['compose-test'], owner: 'w', leaseMs: 1000, now: at(2) });
      assert.equal(job?.id, jobId);
      await store().finishJob({ id: jobId, owner: 'w', now: at(2), outcome: 'succeeded' });
      assert.equal(await store().getCompose(randomUUID()), undefined);
    });

    it('moves only from the states named, records results, and a final state ends it', async () => {
      const c = compose();
      await store().insertCompose({ compose: c, job: { id: randomUUID(), kind: 'compose-test-2', payload: {} }, now: at(1) });
      assert.equal(await store().moveCompose({ id: c.id, from: ['building'], to: 'uploading', now: at(2) }), false, 'not building yet');
      assert.equal(await store().moveCompose({ id: c.id, from: ['pending'], to: 'building', now: at(2) }), true);
      const packages = [{ name: 'tree', version: '2.1.0-1', arch: 'amd64' }];
      assert.equal(await store().moveCompose({ id: c.id, from: ['building'], to: 'uploading', packages, now: at(3) }), true);
      const files = [{ kind: 'squashfs' as const, digest: `sha256:${'a'.repeat(64)}`, size: 5 }];
      assert.equal(await store().moveCompose({ id: c.id, from: ['uploading'], to: 'success', files, now: at(4) }), true);
      const done = (await store().getCompose(c.id))!;
      assert.deepEqual([done.state, done.packages, done.files, done.finishedAt, done.error], ['success', packages, files, at(4), undefined]);
      assert.equal(await store().requestComposeCancel({ id: c.id, now: at(5) }), false, 'a finished compose cannot be cancelled');
      assert.equal(await store().moveCompose({ id: c.id, from: ['pending', 'building', 'uploading'], to: 'failure', error: { id: 29, reason: 'late' }, now: at(5) }), false);
    });

    it('marks a cancel request on an unfinished compose; the failure keeps its catalogue error', async () => {
      const c = compose();
      await store().insertCompose({ compose: c, job: { id: randomUUID(), kind: 'compose-test-3', payload: {} }, now: at(1) });
      assert.equal(await store().requestComposeCancel({ id: c.id, now: at(2) }), true);
      assert.equal((await store().getCompose(c.id))!.cancelRequested, true);
      const error = { id: 29, reason: 'cancelled', details: { stage: 'rootfs' } };
      assert.equal(await store().moveCompose({ id: c.id, from: ['pending'], to: 'failure', error, now: at(3) }), true);
      assert.deepEqual((await store().getCompose(c.id))!.error, error);
      assert.equal(await store().requestComposeCancel({ id: randomUUID(), now: at(3) }), false, 'an unknown compose');
    });

    it('appends log lines in order, numbered from 1, and reads them after a line number in pages', async () => {
      const c = compose();
      await store().insertCompose({ compose: c, job: { id: randomUUID(), kind: 'compose-test-4', payload: {} }, now: at(1) });
      await store().appendComposeLog({ id: c.id, lines: ['one', 'two'] });
      await store().appendComposeLog({ id: c.id, lines: [] });
      await store().appendComposeLog({ id: c.id, lines: ['three', 'ünïcödé \u2603'] });
      assert.deepEqual(await store().readComposeLog({ id: c.id, after: 0, limit: 10 }), [
        { seq: 1, line: 'one' },
        { seq: 2, line: 'two' },
        { seq: 3, line: 'three' },
        { seq: 4, line: 'ünïcödé \u2603' },
      ]);
      assert.deepEqual(await store().readComposeLog({ id: c.id, after: 2, limit: 1 }), [{ seq: 3, line: 'three' }]);
      assert.deepEqual(await store().readComposeLog({ id: c.id, after: 4, limit: 10 }), []);
      assert.deepEqual(await store().readComposeLog({ id: randomUUID(), after: 0, limit: 10 }), []);
    });
  });
}
