import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Digest } from '../../src/domain/digest.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { at } from './common.ts';

const d = (): Digest => sha256(random(16));
const manifest = (repository: string, over: Record<string, unknown> = {}) => ({ repository, digest: d(), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 100, ...over });

/** The registry's part of the `MetadataStore` contract (store/registry-repository.ts). */
export function describeRegistryCases(store: () => MetadataStore): void {
  describe('registry', () => {
    it('creates repositories by their first link or manifest, and lists them in byte order with pages', async () => {
      const names = ['b/app', 'a/app', 'a/App-not-valid-but-stored', 'a-b', 'a/app/sub'];
      for (const name of names) await store().linkBlob({ repository: name, digest: d(), now: at(1) });
      assert.equal(await store().repositoryExists('a/app'), true);
      assert.equal(await store().repositoryExists('nope'), false);
      const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const all = await store().listRepositories({ limit: 100 });
      assert.deepEqual(all.filter((n) => names.includes(n)), sorted);
      const first = await store().listRepositories({ limit: 2 });
      const next = await store().listRepositories({ after: first[1], limit: 100 });
      assert.deepEqual([...first, ...next], all);
    });

    it('links and unlinks blobs per repository, idempotently', async () => {
      const blob = d();
      await store().linkBlob({ repository: 'r1', digest: blob, now: at(1) });
      await store().linkBlob({ repository: 'r1', digest: blob, now: at(2) });
      assert.deepEqual(await store().linkedBlobs('r1', [blob, d()]), new Set([blob]));
      assert.deepEqual(await store().linkedBlobs('r2', [blob]), new Set());
      assert.deepEqual(await store().linkedBlobs('r1', []), new Set());
      assert.equal(await store().unlinkBlob({ repository: 'r1', digest: blob }), true);
      assert.equal(await store().unlinkBlob({ repository: 'r1', digest: blob }), false);
    });

    it('stores manifests with their tags; a tag moves; deleting by digest takes its tags along', async () => {
      const m1 = manifest('team/app', { artifactType: 'application/x', annotations: { k: 'v' } });
      const m2 = manifest('team/app');
      await store().putManifest({ manifest: m1, tag: 'v1', now: at(1) });
      await store().putManifest({ manifest: m1, tag: 'latest', now: at(2) });
      await store().putManifest({ manifest: m2, now: at(3) });
      assert.deepEqual(await store().getManifest('team/app', m1.digest), { ...m1, createdAt: at(1) });
      assert.equal(await store().getManifest('other', m1.digest), undefined);
      assert.deepEqual(await store().heldManifests('team/app', [m1.digest, m2.digest, d()]), new Set([m1.digest, m2.digest]));
      assert.equal(await store().resolveTag('team/app', 'latest'), m1.digest);
      await store().putManifest({ manifest: m2, tag: 'latest', now: at(4) });
      assert.equal(await store().resolveTag('team/app', 'latest'), m2.digest, 'a tag moves to the manifest pushed last');
      assert.deepEqual(await store().listTags({ repository: 'team/app', limit: 10 }), ['latest', 'v1']);
      assert.deepEqual(await store().listTags({ repository: 'team/app', after: 'latest', limit: 10 }), ['v1']);
      assert.equal(await store().deleteTag({ repository: 'team/app', tag: 'latest' }), true);
      assert.equal(await store().deleteTag({ repository: 'team/app', tag: 'latest' }), false);
      assert.equal(await store().deleteManifest({ repository: 'team/app', digest: m1.digest }), true);
      assert.deepEqual(await store().listTags({ repository: 'team/app', limit: 10 }), [], 'v1 went with its manifest');
      assert.equal(await store().deleteManifest({ repository: 'team/app', digest: m1.digest }), false);
    });

    it('lists referrers of a subject, also one that does not exist, in the order they were pushed', async () => {
      const subject = d();
      const a = manifest('refs', { subject, artifactType: 'application/a', annotations: { n: '1' } });
      const b = manifest('refs', { subject, artifactType: 'application/b' });
      await store().putManifest({ manifest: a, now: at(1) });
      await store().putManifest({ manifest: b, now: at(2) });
      await store().putManifest({ manifest: manifest('refs'), now: at(3) });
      const listed = await store().listReferrers({ repository: 'refs', subject });
      assert.deepEqual(listed.map((m) => m.digest), [a.digest, b.digest]);
      assert.deepEqual(await store().listReferrers({ repository: 'other', subject }), []);
    });

    it('creates a server secret once, whichever instance asks first', async () => {
      const first = await store().serverSecret('test-secret', () => 'one', at(1));
      const second = await store().serverSecret('test-secret', () => 'two', at(2));
      assert.equal(first, 'one');
      assert.equal(second, 'one');
    });
  });
}
