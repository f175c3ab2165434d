import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { DomainError } from '../../src/domain/errors.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { artifact, catalogFixtures, image, queue, stepIds, version } from './catalog-store.cases.ts';
import { at, T0 } from './common.ts';

const N = 8;

/** Runs `n` calls at once, alternating between the two instances; resolves with every outcome. */
const race = <T>(stores: readonly MetadataStore[], n: number, call: (store: MetadataStore, i: number) => Promise<T>) =>
  Promise.allSettled(Array.from({ length: n }, (_, i) => call(stores[i % stores.length]!, i)));
const fulfilled = <T>(results: PromiseSettledResult<T>[]) => results.filter((r): r is PromiseFulfilledResult<T> => r.status === 'fulfilled').map((r) => r.value);
const rejectionKinds = (results: PromiseSettledResult<unknown>[]) =>
  results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason instanceof DomainError ? r.reason.kind : String(r.reason)));

/**
 * Two instances of the store on one database (two processes behind a load balancer) racing on
 * the same rows: every uniqueness and state rule must hold because the database enforces it.
 */
export function describeRaceCases(store: () => MetadataStore, openPeer: () => Promise<MetadataStore>): void {
  describe('two instances racing', () => {
    let peer: MetadataStore;
    let both: MetadataStore[];
    beforeEach(async () => {
      peer = await openPeer();
      both = [store(), peer];
    });
    afterEach(() => peer.close());
    const { draft, publish } = catalogFixtures(store);

    it('starts one publish job for one draft', async () => {
      const { v } = await draft();
      const results = await race(both, N, (s) => {
        const jobId = randomUUID();
        return s.startPublish({ versionId: v.id, jobId, stepIds: stepIds(), queue: queue(jobId), now: at(2) });
      });
      const outcomes = fulfilled(results);
      assert.equal(outcomes.length, N, `every call succeeds: ${rejectionKinds(results).join(', ')}`);
      assert.equal(outcomes.filter((o) => o.created).length, 1);
      assert.equal(new Set(outcomes.map((o) => o.jobId)).size, 1, 'all callers learn the same job');
      const claimed = fulfilled(await race(both, N, (s, i) => s.claimJob({ kinds: ['publish'], owner: `w${i}`, leaseMs: 60_000, now: at(3) }))).filter(Boolean);
      assert.equal(claimed.length, 1, 'one durable job drives it');
      await store().finishJob({ id: claimed[0]!.id, owner: claimed[0]!.leaseOwner!, now: at(4), outcome: 'succeeded' });
    });

    it('keeps image names and version names unique', async () => {
      const images = await race(both, N, (s) => s.insertImage(image('contested')));
      assert.equal(fulfilled(images).length, 1);
      assert.deepEqual(rejectionKinds(images), Array(N - 1).fill('conflict'));
      const img = (await store().getImage('contested'))!;
      const versions = await race(both, N, (s) => s.insertVersion(version(img.id, '2.0')));
      assert.equal(fulfilled(versions).length, 1);
      assert.deepEqual(rejectionKinds(versions), Array(N - 1).fill('conflict'));
    });

    it('keeps one artifact per key in a draft', async () => {
      const { v, a } = await draft();
      const results = await race(both, N, (s) => s.insertArtifact({ artifact: artifact(v.id, { architecture: 'arm64' }), now: at(2) }));
      assert.equal(fulfilled(results).length, 1);
      assert.deepEqual(rejectionKinds(results), Array(N - 1).fill('conflict'));
      assert.equal((await store().listArtifacts(v.id)).length, 2, `${a.id} and one arm64 artifact`);
    });

    it('never publishes a draft whose last artifact is being removed', async () => {
      const { v, a } = await draft();
      const jobId = randomUUID();
      await Promise.allSettled([
        peer.deleteArtifact({ versionId: v.id, artifactId: a.id, now: at(2) }),
        store().startPublish({ versionId: v.id, jobId, stepIds: stepIds(), queue: queue(jobId), now: at(2) }),
      ]);
      const after = (await store().getVersionById(v.id))!;
      const artifacts = await store().listArtifacts(v.id);
      if (after.state === 'draft') assert.equal(artifacts.length, 0, 'the removal won');
      else {
        assert.equal(artifacts.length, 1, 'publishing won and kept its artifact');
        const job = (await store().claimJob({ kinds: ['publish'], owner: 'w', leaseMs: 60_000, now: at(3) }))!;
        await store().finishJob({ id: job.id, owner: 'w', now: at(4), outcome: 'succeeded' });
      }
    });

    it('ends racing alias moves with one alias on one of the versions', async () => {
      const { img, v } = await draft();
      await publish(v.id, at(2));
      const v2 = version(img.id, '2.0');
      await store().insertVersion(v2);
      await store().insertArtifact({ artifact: artifact(v2.id), now: at(3) });
      await publish(v2.id, at(4));
      const results = await race(both, N, (s, i) => s.putAlias({ id: randomUUID(), imageId: img.id, alias: 'stable', versionId: i % 2 ? v.id : v2.id, now: at(5) }));
      assert.equal(fulfilled(results).length, N, rejectionKinds(results).join(', '));
      const aliases = await store().listAliases(img.id);
      assert.equal(aliases.length, 1);
      assert.ok([v.id, v2.id].includes(aliases[0]!.versionId));
    });

    it('completes an upload once and never holds more bytes than expected', async () => {
      const id = randomUUID();
      await store().insertUpload({ id, expectedDigest: sha256(random(8)), expectedSize: 100, state: 'created', revision: 0, expiresAt: at(3600), createdAt: T0, updatedAt: T0 });
      const puts = await race(both, N, (s, i) => s.putUploadPart({ uploadId: id, part: { number: i + 1, size: 40, etag: `e${i}`, key: randomUUID() }, now: at(1) }));
      assert.equal(fulfilled(puts).length, 2, 'two parts of 40 bytes fit in 100, a third never');
      assert.deepEqual(rejectionKinds(puts), Array(N - 2).fill('payload_too_large'));
      const { revision } = (await store().getUpload(id))!;
      const parts = await store().listUploadParts(id);
      const completions = await race(both, N, (s) => s.completeUpload({ uploadId: id, revision, parts, job: { id: randomUUID(), kind: 'ingest', payload: {} }, now: at(2) }));
      assert.equal(fulfilled(completions).length, N, rejectionKinds(completions).join(', '));
      assert.equal(fulfilled(completions).filter(Boolean).length, 1);
      const job = (await store().claimJob({ kinds: ['ingest'], owner: 'w', leaseMs: 60_000, now: at(3) }))!;
      assert.equal(await store().claimJob({ kinds: ['ingest'], owner: 'w', leaseMs: 60_000, now: at(3) }), undefined, 'one ingest job');
      await store().finishJob({ id: job.id, owner: 'w', now: at(4), outcome: 'succeeded' });
    });

    it('records one blob when uploads of the same digest become ready at once', async () => {
      const digest = sha256(random(8));
      const ids = Array.from({ length: N }, () => randomUUID());
      for (const id of ids) await store().insertUpload({ id, expectedDigest: digest, expectedSize: 8, state: 'ingesting', revision: 1, expiresAt: at(3600), createdAt: T0, updatedAt: T0 });
      const results = await race(both, N, (s, i) => s.markUploadReady({ uploadId: ids[i]!, blob: { digest, size: 8 }, now: at(1) }));
      assert.equal(fulfilled(results).length, N, rejectionKinds(results).join(', '));
      assert.equal((await store().getBlob(digest))!.size, 8);
      for (const id of ids) assert.equal((await store().getUpload(id))!.state, 'ready');
    });

    it('hands one job to one of many claimers', async () => {
      await store().enqueueJob({ id: randomUUID(), kind: 'ingest', payload: {}, now: at(0) });
      const claims = fulfilled(await race(both, N, (s, i) => s.claimJob({ kinds: ['ingest'], owner: `w${i}`, leaseMs: 60_000, now: at(1) }))).filter(Boolean);
      assert.equal(claims.length, 1);
      await store().finishJob({ id: claims[0]!.id, owner: claims[0]!.leaseOwner!, now: at(2), outcome: 'succeeded' });
    });

    it('never lets racing revocations remove the last auth-manager', async () => {
      const manager = async (id: string) => {
        await store().insertPrincipal({ id, kind: 'user', displayName: id, attributes: {}, now: T0 });
        await store().grantRole({ principalId: id, roleId: 'auth-manager', now: T0 });
      };
      const revoke = (s: MetadataStore, principalId: string) => s.revokeRole({ principalId, roleId: 'auth-manager', guardRoleId: 'auth-manager', now: at(1) });
      let survivor = 'p0';
      await manager(survivor);
      // Several rounds, so that the two revocations surely overlap in some of them.
      for (let round = 1; round <= 5; round++) {
        const challenger = `p${round}`;
        await manager(challenger);
        const [a, b] = await Promise.all([revoke(store(), survivor), revoke(peer, challenger)]);
        assert.deepEqual([a, b].sort(), ['last_holder', 'removed'], `round ${round}`);
        if (a === 'removed') survivor = challenger;
        assert.deepEqual((await store().listPrincipalsWithRole('auth-manager')).map((p) => p.id), [survivor]);
      }
    });

    it('bootstraps one first admin when instances start together', async () => {
      const results = await race(both, N, (s, i) =>
        s.bootstrapPrincipal({
          principal: { id: `admin-${i}`, kind: 'user', displayName: 'admin', attributes: {} },
          roleIds: ['auth-manager'],
          guardRoleId: 'auth-manager',
          token: { id: `t${i}`, principalId: `admin-${i}`, name: 'bootstrap', secretHash: 'ab'.repeat(32), expiresAt: at(3600), createdAt: T0 },
          now: T0,
        }),
      );
      assert.equal(fulfilled(results).filter(Boolean).length, 1, rejectionKinds(results).join(', '));
      assert.equal((await store().listPrincipalsWithRole('auth-manager')).length, 1);
    });
  });
}
