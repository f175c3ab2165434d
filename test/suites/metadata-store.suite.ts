import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ApiToken } from '../../src/domain/auth.ts';
import type { Digest } from '../../src/domain/digest.ts';
import type { UploadPart, UploadSession } from '../../src/domain/upload.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { random, sha256 } from '../helpers/bytes.ts';
import { describeAuthCases } from './auth-store.cases.ts';
import { catalogFixtures, describeCatalogCases } from './catalog-store.cases.ts';
import { describeComposeCases } from './compose-store.cases.ts';
import { describeRaceCases } from './race.cases.ts';
import { describeRegistryCases } from './registry-store.cases.ts';
import { at, rejectsWith, T0 } from './common.ts';

export interface MetadataStoreFixture {
  store: MetadataStore;
  /** Opens a second store on the same database, as another instance of the server would. */
  openPeer(): Promise<MetadataStore>;
  cleanup(): Promise<void>;
}


function session(overrides: Partial<UploadSession> = {}): UploadSession {
  return {
    id: randomUUID(),
    expectedDigest: sha256(random(16)),
    expectedSize: 1000,
    state: 'created',
    revision: 0,
    expiresAt: at(3600),
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

const part = (number: number, size = 50): UploadPart => ({ number, size, etag: `e${number}-${size}`, key: randomUUID().replace(/-/g, '') });
const token = (principalId: string, id = randomUUID().replace(/-/g, '')): ApiToken => ({ id, principalId, name: 't', secretHash: 'ab'.repeat(32), expiresAt: at(86400), createdAt: T0 });

/**
 * The `MetadataStore` contract (store/metadata-store.ts), run by every implementation unchanged.
 * After each test no job may hold a lease.
 */
export function describeMetadataStore(name: string, makeFixture: () => Promise<MetadataStoreFixture>): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    let f: MetadataStoreFixture;
    let store: MetadataStore;
    beforeEach(async () => {
      f = await makeFixture();
      store = f.store;
    });
    afterEach(async () => {
      try {
        assert.deepEqual(await store.listLeaseOwners(), [], 'no job may be left holding a lease');
      } finally {
        await f.cleanup();
      }
    });

    const newJob = (kind = 'ingest') => ({ id: randomUUID(), kind, payload: { n: 1 } });
    const claimAndFinish = async (owner: string, now: Date) => {
      const job = await store.claimJob({ kinds: ['ingest'], owner, leaseMs: 1000, now });
      if (job) await store.finishJob({ id: job.id, owner, now, outcome: 'succeeded' });
      return job;
    };

    it('answers ping', async () => {
      await store.ping();
    });

    it('reads the catalog revision fresh on a peer, even while its reads of it are in flight', async () => {
      const peer = await f.openPeer();
      const fixtures = catalogFixtures(() => store);
      const { img, v } = await fixtures.draft('revision');
      await fixtures.publish(v.id, at(0));
      // Readers keep the peer's revision query running: a read that joined one begun before a
      // change committed would miss it.
      let stop = false;
      const readers = Array.from({ length: 16 }, async () => {
        while (!stop) await peer.catalogRevision();
      });
      try {
        for (let i = 0; i < 30; i++) {
          const before = (await store.catalogRevision()).revision;
          await store.putAlias({ id: randomUUID(), imageId: img.id, alias: `a${i}`, versionId: v.id, now: at(i) });
          assert.ok((await peer.catalogRevision()).revision > before, `change ${i} is seen by the next read on the peer`);
        }
      } finally {
        stop = true;
        await Promise.all(readers);
        await peer.close();
      }
    });

    describeCatalogCases(() => store);
    describeAuthCases(() => store);
    describeRaceCases(() => store, () => f.openPeer());
    describeRegistryCases(() => store);
    describeComposeCases(() => store);

    describe('uploads', () => {
      it('round-trips a session with every optional field', async () => {
        const s = session({ mediaTypeHint: 'application/x-qemu-disk', filenameHint: 'disk.qcow2', expectedSize: 5 * 1024 ** 3 });
        await store.insertUpload(s);
        assert.deepEqual(await store.getUpload(s.id), s);
        assert.equal(await store.getUpload(randomUUID()), undefined);
      });

      it('refuses a second session with the same id as a conflict', async () => {
        const s = session();
        await store.insertUpload(s);
        await rejectsWith(store.insertUpload(s), 'conflict');
      });

      it('records parts, moves to uploading, bumps the revision and hands back the replaced part', async () => {
        const s = session();
        await store.insertUpload(s);
        const first = part(2);
        assert.deepEqual(await store.putUploadPart({ uploadId: s.id, part: first, now: at(1) }), { replaced: undefined });
        const second = { ...part(2, 60) };
        assert.deepEqual(await store.putUploadPart({ uploadId: s.id, part: second, now: at(2) }), { replaced: first });
        await store.putUploadPart({ uploadId: s.id, part: part(1), now: at(3) });
        const after = (await store.getUpload(s.id))!;
        assert.equal(after.state, 'uploading');
        assert.equal(after.revision, 3);
        assert.deepEqual(after.updatedAt, at(3));
        assert.deepEqual((await store.listUploadParts(s.id)).map((p) => [p.number, p.size]), [[1, 50], [2, 60]]);
      });

      it('round-trips parts in place and a session whose digest and size are learned at commit', async () => {
        const { expectedDigest: _digest, expectedSize: _size, ...s } = session({ slotSize: 50 });
        await store.insertUpload(s);
        assert.deepEqual(await store.getUpload(s.id), s);
        const placed = { ...part(2), key: 'assembly', offset: 50 };
        await store.putUploadPart({ uploadId: s.id, part: placed, now: at(1) });
        assert.deepEqual(await store.listUploadParts(s.id), [placed]);
        const digest = sha256(random(8));
        await store.transitionUpload({ uploadId: s.id, from: ['uploading'], to: 'ingesting', now: at(2) });
        await store.markUploadReady({ uploadId: s.id, blob: { digest, size: 50 }, now: at(3) });
        const ready = (await store.getUpload(s.id))!;
        assert.deepEqual([ready.state, ready.expectedDigest, ready.expectedSize], ['ready', digest, 50]);
      });

      it('lets one part write at a time write in place, learning the slot size from the first', async () => {
        const s = session({ expectedSize: 300 });
        await store.insertUpload(s);
        const begin = (partNumber: number, place?: { offset: number; slotSize: number; learnsSlotSize: boolean }, now = at(1)) =>
          store.beginPartWrite({ uploadId: s.id, partNumber, writeId: randomUUID(), place, leaseMs: 10_000, now });
        assert.deepEqual(await begin(1, { offset: 0, slotSize: 100, learnsSlotSize: true }), { inPlace: true });
        assert.equal((await store.getUpload(s.id))!.slotSize, 100);
        assert.deepEqual(await begin(1, { offset: 0, slotSize: 100, learnsSlotSize: false }), { inPlace: false }, 'part 1 is being written in place already');
        assert.deepEqual(await begin(2, { offset: 100, slotSize: 100, learnsSlotSize: false }), { inPlace: true });
        assert.deepEqual(await begin(3, { offset: 240, slotSize: 120, learnsSlotSize: true }), { inPlace: false }, 'another slot size was learned first');
        assert.deepEqual(await begin(3, undefined), { inPlace: false });
        assert.equal(await store.countPartWrites({ uploadId: s.id, now: at(1) }), 5);
        assert.equal(await store.countPartWrites({ uploadId: s.id, now: at(11) }), 0, 'leases lapse');
        assert.deepEqual(await begin(1, { offset: 0, slotSize: 100, learnsSlotSize: false }, at(11)), { inPlace: true }, 'a lapsed write no longer occupies its place');
        // A part held in place occupies its place: a re-send is kept apart.
        await store.putUploadPart({ uploadId: s.id, part: { ...part(2, 100), key: 'assembly', offset: 100 }, now: at(12) });
        assert.deepEqual(await begin(2, { offset: 100, slotSize: 100, learnsSlotSize: false }, at(30)), { inPlace: false });
      });

      it('renews and ends part writes, and stops renewing once the session is no longer open', async () => {
        const s = session();
        await store.insertUpload(s);
        const writeId = randomUUID();
        await store.beginPartWrite({ uploadId: s.id, partNumber: 1, writeId, leaseMs: 1000, now: at(1) });
        assert.equal(await store.renewPartWrite({ writeId, leaseMs: 1000, now: at(1.5) }), true);
        assert.equal(await store.countPartWrites({ uploadId: s.id, now: at(2.2) }), 1, 'renewed past its first lease');
        await store.putUploadPart({ uploadId: s.id, part: part(1), writeId, now: at(2) });
        assert.equal(await store.countPartWrites({ uploadId: s.id, now: at(2) }), 0, 'recording the part ends its write');
        const other = randomUUID();
        await store.beginPartWrite({ uploadId: s.id, partNumber: 2, writeId: other, leaseMs: 1000, now: at(2) });
        await store.transitionUpload({ uploadId: s.id, from: ['uploading'], to: 'aborted', now: at(3) });
        assert.equal(await store.renewPartWrite({ writeId: other, leaseMs: 1000, now: at(2.5) }), false, 'the writer must stop');
        assert.equal(await store.countPartWrites({ uploadId: s.id, now: at(2.5) }), 1, 'until it ends its write or its lease lapses');
        await store.endPartWrite(other);
        await store.endPartWrite(other);
        assert.equal(await store.countPartWrites({ uploadId: s.id, now: at(2.5) }), 0);
        assert.equal(await store.renewPartWrite({ writeId: randomUUID(), leaseMs: 1000, now: at(2.5) }), false);
        await rejectsWith(store.beginPartWrite({ uploadId: s.id, partNumber: 3, writeId: randomUUID(), leaseMs: 1000, now: at(4) }), 'precondition_failed', 'upload_not_open');
        await rejectsWith(store.beginPartWrite({ uploadId: randomUUID(), partNumber: 3, writeId: randomUUID(), leaseMs: 1000, now: at(4) }), 'not_found');
      });

      it('never lets a session hold more bytes than it expects', async () => {
        const s = session({ expectedSize: 100 });
        await store.insertUpload(s);
        await store.putUploadPart({ uploadId: s.id, part: part(1, 60), now: at(1) });
        await rejectsWith(store.putUploadPart({ uploadId: s.id, part: part(2, 41), now: at(1) }), 'payload_too_large', 'upload_too_large');
        await store.putUploadPart({ uploadId: s.id, part: part(2, 40), now: at(1) });
        await store.putUploadPart({ uploadId: s.id, part: part(1, 60), now: at(2) });
        assert.deepEqual((await store.listUploadParts(s.id)).map((p) => p.size), [60, 40], 'replacing a part counts only the new bytes');
      });

      it('refuses parts for unknown, finished or expired sessions', async () => {
        await rejectsWith(store.putUploadPart({ uploadId: randomUUID(), part: part(1), now: at(1) }), 'not_found');
        const expired = session({ expiresAt: at(10) });
        await store.insertUpload(expired);
        await rejectsWith(store.putUploadPart({ uploadId: expired.id, part: part(1), now: at(10) }), 'precondition_failed', 'upload_expired');
        const done = session({ state: 'ready' });
        await store.insertUpload(done);
        await rejectsWith(store.putUploadPart({ uploadId: done.id, part: part(1), now: at(1) }), 'precondition_failed', 'upload_not_open');
        assert.deepEqual(await store.listUploadParts(expired.id), []);
      });

      it('completes only at the revision the caller verified, keeps the listed parts and enqueues the job', async () => {
        const s = session();
        await store.insertUpload(s);
        for (const n of [1, 2, 3]) await store.putUploadPart({ uploadId: s.id, part: part(n), now: at(1) });
        const parts = await store.listUploadParts(s.id);
        const job = newJob();
        assert.equal(await store.completeUpload({ uploadId: s.id, revision: 2, parts: parts.slice(0, 2), job, now: at(2) }), false);
        assert.equal((await store.getUpload(s.id))!.state, 'uploading');
        assert.equal(await store.getJob(job.id), undefined);
        assert.equal(await store.completeUpload({ uploadId: s.id, revision: 3, parts: parts.slice(0, 2), job, now: at(2) }), true);
        assert.equal((await store.getUpload(s.id))!.state, 'completed');
        assert.deepEqual((await store.listUploadParts(s.id)).map((p) => p.number), [1, 2]);
        const queued = (await store.getJob(job.id))!;
        assert.equal(queued.state, 'queued');
        assert.deepEqual(queued.payload, { n: 1 });
        assert.equal(await store.completeUpload({ uploadId: s.id, revision: 3, parts, job: newJob(), now: at(3) }), false);
        await claimAndFinish('w', at(3));
      });

      it('transitions conditionally and records the reason', async () => {
        const s = session({ state: 'completed' });
        await store.insertUpload(s);
        assert.equal(await store.transitionUpload({ uploadId: s.id, from: ['created', 'uploading'], to: 'aborted', now: at(1) }), undefined);
        const ingesting = await store.transitionUpload({ uploadId: s.id, from: ['completed'], to: 'ingesting', now: at(1) });
        assert.equal(ingesting?.state, 'ingesting');
        const failed = await store.transitionUpload({ uploadId: s.id, from: ['ingesting'], to: 'failed', reason: 'digest mismatch', now: at(2) });
        assert.equal(failed?.failureReason, 'digest mismatch');
      });

      it('records a verified blob with its ready session, idempotently', async () => {
        const digest = sha256(random(32)) as Digest;
        const s = session({ expectedDigest: digest, state: 'ingesting', expectedSize: 32 });
        await store.insertUpload(s);
        assert.equal(await store.getBlob(digest), undefined);
        assert.equal(await store.findReadyUpload(digest, 32), undefined);
        await store.markUploadReady({ uploadId: s.id, blob: { digest, size: 32 }, now: at(5) });
        await store.markUploadReady({ uploadId: s.id, blob: { digest, size: 32 }, now: at(9) });
        assert.deepEqual(await store.getBlob(digest), { digest, size: 32, createdAt: at(5) });
        assert.equal((await store.findReadyUpload(digest, 32))?.id, s.id);
        const twin = session({ expectedDigest: digest, state: 'ingesting', expectedSize: 32, createdAt: at(6) });
        await store.insertUpload(twin);
        await store.markUploadReady({ uploadId: twin.id, blob: { digest, size: 32 }, now: at(7) });
        assert.deepEqual((await store.getBlob(digest))?.createdAt, at(5), 'the first record stays');
        assert.equal((await store.findReadyUpload(digest, 32))?.id, twin.id, 'the newest ready session is found');
        assert.equal(await store.findReadyUpload(digest, 33), undefined, 'a ready session of another size is not this blob');
        const liar = session({ expectedDigest: digest, state: 'ingesting', expectedSize: 5 });
        await store.insertUpload(liar);
        await rejectsWith(store.markUploadReady({ uploadId: liar.id, blob: { digest, size: 5 }, now: at(8) }), 'invalid', 'size_mismatch');
        assert.equal((await store.getUpload(liar.id))!.state, 'ingesting', 'nothing changed');
        assert.deepEqual((await store.getBlob(digest))?.size, 32);
      });

      it('expires open sessions past their deadline and lists finished sessions until purged', async () => {
        const open = [session({ expiresAt: at(10) }), session({ state: 'uploading', expiresAt: at(10) })];
        const alive = session({ expiresAt: at(100) });
        const finished = session({ state: 'completed', expiresAt: at(10) });
        for (const s of [...open, alive, finished]) await store.insertUpload(s);
        assert.deepEqual(await store.expireUploads({ now: at(9), reason: 'expired', limit: 10 }), []);
        assert.deepEqual((await store.expireUploads({ now: at(10), reason: 'expired', limit: 10 })).sort(), open.map((s) => s.id).sort());
        for (const s of open) assert.equal((await store.getUpload(s.id))!.failureReason, 'expired');
        assert.equal((await store.getUpload(alive.id))!.state, 'created');
        assert.equal((await store.getUpload(finished.id))!.state, 'completed');
        assert.deepEqual((await store.listUnpurgedUploads(10)).sort(), open.map((s) => s.id).sort());
        await store.markUploadPurged({ uploadId: open[0]!.id, now: at(11) });
        await store.markUploadPurged({ uploadId: open[0]!.id, now: at(12) });
        assert.deepEqual(await store.listUnpurgedUploads(10), [open[1]!.id]);
      });

      it('expires at most `limit` sessions per call', async () => {
        for (let i = 0; i < 5; i++) await store.insertUpload(session({ expiresAt: at(1) }));
        assert.equal((await store.expireUploads({ now: at(2), reason: 'x', limit: 3 })).length, 3);
        assert.equal((await store.expireUploads({ now: at(2), reason: 'x', limit: 3 })).length, 2);
      });
    });

    describe('jobs', () => {
      it('claims, renews and finishes a job under a lease', async () => {
        const job = newJob();
        await store.enqueueJob({ ...job, now: at(0) });
        const claimed = (await store.claimJob({ kinds: ['ingest'], owner: 'a', leaseMs: 1000, now: at(1) }))!;
        assert.equal(claimed.id, job.id);
        assert.equal(claimed.state, 'running');
        assert.equal(claimed.attempts, 1);
        assert.equal(claimed.leaseOwner, 'a');
        assert.deepEqual(claimed.leaseExpiresAt, new Date(at(1).getTime() + 1000));
        assert.equal(await store.claimJob({ kinds: ['ingest'], owner: 'b', leaseMs: 1000, now: at(1.5) }), undefined);
        assert.equal(await store.renewJobLease({ id: job.id, owner: 'b', leaseMs: 1000, now: at(1.5) }), false);
        assert.equal(await store.renewJobLease({ id: job.id, owner: 'a', leaseMs: 1000, now: at(1.5) }), true);
        assert.deepEqual(await store.listLeaseOwners(), ['a']);
        await store.finishJob({ id: job.id, owner: 'b', now: at(2), outcome: 'succeeded' });
        assert.equal((await store.getJob(job.id))!.state, 'running', 'only the owner finishes a job');
        await store.finishJob({ id: job.id, owner: 'a', now: at(2), outcome: 'succeeded' });
        assert.equal((await store.getJob(job.id))!.state, 'succeeded');
        assert.equal(await store.claimJob({ kinds: ['ingest'], owner: 'a', leaseMs: 1000, now: at(100) }), undefined);
      });

      it('hands a job whose lease lapsed to another owner', async () => {
        await store.enqueueJob({ ...newJob(), now: at(0) });
        const first = (await store.claimJob({ kinds: ['ingest'], owner: 'dead', leaseMs: 1000, now: at(0) }))!;
        assert.equal(await store.claimJob({ kinds: ['ingest'], owner: 'b', leaseMs: 1000, now: at(0.999) }), undefined);
        const second = (await store.claimJob({ kinds: ['ingest'], owner: 'b', leaseMs: 1000, now: at(1.001) }))!;
        assert.equal(second.id, first.id);
        assert.equal(second.attempts, 2);
        assert.equal(await store.renewJobLease({ id: first.id, owner: 'dead', leaseMs: 1000, now: at(1.1) }), false);
        await store.finishJob({ id: first.id, owner: 'b', now: at(2), outcome: 'succeeded' });
      });

      it('gives each of many concurrent claimers a different job', async () => {
        const ids = Array.from({ length: 6 }, () => newJob());
        for (const j of ids) await store.enqueueJob({ ...j, now: at(0) });
        const claims = await Promise.all(ids.map((_, i) => store.claimJob({ kinds: ['ingest'], owner: `w${i}`, leaseMs: 1000, now: at(1) })));
        assert.deepEqual(claims.map((c) => c!.id).sort(), ids.map((j) => j.id).sort());
        for (const [i, c] of claims.entries()) await store.finishJob({ id: c!.id, owner: `w${i}`, now: at(2), outcome: 'succeeded' });
      });

      it('re-queues a retried job for later and records failures', async () => {
        const job = newJob();
        await store.enqueueJob({ ...job, now: at(0) });
        await store.claimJob({ kinds: ['ingest'], owner: 'a', leaseMs: 1000, now: at(0) });
        await store.finishJob({ id: job.id, owner: 'a', now: at(1), outcome: 'retry', error: 'disk busy', retryAt: at(5) });
        assert.equal((await store.getJob(job.id))!.lastError, 'disk busy');
        assert.equal(await store.claimJob({ kinds: ['ingest'], owner: 'a', leaseMs: 1000, now: at(4) }), undefined);
        await store.claimJob({ kinds: ['ingest'], owner: 'a', leaseMs: 1000, now: at(5) });
        await store.finishJob({ id: job.id, owner: 'a', now: at(6), outcome: 'failed', error: 'gave up' });
        const failed = (await store.getJob(job.id))!;
        assert.equal(failed.state, 'failed');
        assert.equal(failed.attempts, 2);
        assert.equal(failed.leaseOwner, undefined);
      });

      it('claims only the kinds asked for', async () => {
        await store.enqueueJob({ ...newJob('publish'), now: at(0) });
        assert.equal(await store.claimJob({ kinds: ['ingest'], owner: 'a', leaseMs: 1000, now: at(1) }), undefined);
        const j = (await store.claimJob({ kinds: ['publish'], owner: 'a', leaseMs: 1000, now: at(1) }))!;
        await store.finishJob({ id: j.id, owner: 'a', now: at(1), outcome: 'succeeded' });
      });

      it('releases every lease of an owner back to the queue', async () => {
        for (let i = 0; i < 2; i++) await store.enqueueJob({ ...newJob(), now: at(0) });
        await store.claimJob({ kinds: ['ingest'], owner: 'gone', leaseMs: 60_000, now: at(0) });
        await store.claimJob({ kinds: ['ingest'], owner: 'gone', leaseMs: 60_000, now: at(0) });
        assert.equal(await store.releaseLeases({ owner: 'gone', now: at(1) }), 2);
        assert.deepEqual(await store.listLeaseOwners(), []);
        assert.ok(await claimAndFinish('next', at(1)));
        assert.ok(await claimAndFinish('next', at(1)));
      });
    });

    describe('auth', () => {
      it('stores principals with their roles, granting idempotently', async () => {
        await store.insertPrincipal({ id: 'p1', kind: 'service', displayName: 'CI', attributes: { repo: 'acme/images' }, now: at(0) });
        await store.grantRole({ principalId: 'p1', roleId: 'content-writer', now: at(0) });
        await store.grantRole({ principalId: 'p1', roleId: 'content-writer', now: at(1) });
        await store.grantRole({ principalId: 'p1', roleId: 'auth-manager', now: at(1) });
        const p = (await store.getPrincipal('p1'))!;
        assert.deepEqual(p, { id: 'p1', kind: 'service', displayName: 'CI', attributes: { repo: 'acme/images' }, roleIds: ['auth-manager', 'content-writer'], createdAt: at(0) });
        assert.deepEqual((await store.listPrincipalsWithRole('auth-manager')).map((x) => x.id), ['p1']);
        await rejectsWith(store.insertPrincipal({ id: 'p1', kind: 'user', displayName: 'x', attributes: {}, now: at(2) }), 'conflict');
      });

      it('stores API tokens by id, refusing duplicates', async () => {
        await store.insertPrincipal({ id: 'p1', kind: 'user', displayName: 'u', attributes: {}, now: at(0) });
        const t = token('p1');
        await store.insertApiToken(t);
        assert.deepEqual(await store.getApiToken(t.id), t);
        await rejectsWith(store.insertApiToken(t), 'conflict');
        assert.equal(await store.getApiToken('missing'), undefined);
      });

      it('renews an expired token only with its own secret, and never a revoked one', async () => {
        await store.insertPrincipal({ id: 'p1', kind: 'user', displayName: 'u', attributes: {}, now: at(0) });
        const expired = { ...token('p1', 'expired'), expiresAt: at(10) };
        const revoked = { ...token('p1', 'revoked'), expiresAt: at(10), revokedAt: at(5) };
        const live = { ...token('p1', 'live'), expiresAt: at(100) };
        for (const t of [expired, revoked, live]) await store.insertApiToken(t);
        const renew = (id: string, secretHash = 'ab'.repeat(32)) => store.renewExpiredApiToken({ id, secretHash, expiresAt: at(1000), now: at(20) });
        assert.equal(await renew('expired', 'cd'.repeat(32)), false);
        assert.equal(await renew('revoked'), false);
        assert.equal(await renew('live'), false);
        assert.equal(await renew('missing'), false);
        assert.equal(await renew('expired'), true);
        assert.deepEqual((await store.getApiToken('expired'))!.expiresAt, at(1000));
        assert.deepEqual((await store.getApiToken('live'))!.expiresAt, at(100));
      });

      it('bootstraps once: only while no principal holds the guard role', async () => {
        const input = (id: string) => ({
          principal: { id: 'admin', kind: 'user' as const, displayName: 'admin', attributes: {} },
          roleIds: ['auth-manager', 'content-writer'],
          guardRoleId: 'auth-manager',
          token: token('admin', id),
          now: at(0),
        });
        assert.equal(await store.bootstrapPrincipal(input('t1')), true);
        assert.equal(await store.bootstrapPrincipal(input('t2')), false);
        assert.deepEqual((await store.getPrincipal('admin'))!.roleIds, ['auth-manager', 'content-writer']);
        assert.ok(await store.getApiToken('t1'));
        assert.equal(await store.getApiToken('t2'), undefined);
      });
    });
  });
}
