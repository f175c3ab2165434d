import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { INGEST_JOB, type JobKind } from '../../src/domain/job.ts';
import { currentOwner } from '../../src/jobs/owner.ts';
import { createJobRunner, type JobHandler, type JobRunner } from '../../src/jobs/runner.ts';
import { systemClock } from '../../src/lib/clock.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { openTestStore } from '../helpers/store.ts';

const log = pino({ level: 'silent' });

/** A kind for tests, whose payload is an empty object. */
const TEST: JobKind<Record<string, never>> = { kind: 'test', encode: (p) => p, decode: () => ({}) };
type TestHandler = JobHandler<Record<string, never>>;

async function until(check: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('job runner', () => {
  let dir: string;
  let store: MetadataStore;
  beforeEach(async () => {
    dir = await makeDataDir();
    store = await openTestStore(dir);
  });
  // Every runner a test starts is stopped, whatever the test did: a failed test must not leave a loop running.
  let runners: JobRunner[] = [];
  afterEach(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    runners = [];
    await store.close();
    await removeDir(dir);
  });

  const track = (r: JobRunner) => (runners.push(r), r);
  const runner = (handler: TestHandler, leaseMs = 2000, concurrency = 2) =>
    track(createJobRunner({ store, workers: [{ handler, concurrency }], leaseMs, pollMs: 20, clock: systemClock, log }));
  const enqueue = async (kind = 'test') => {
    const id = randomUUID();
    await store.enqueueJob({ id, kind, payload: {}, now: systemClock.now() });
    return id;
  };

  it('runs an enqueued job at once when notified and marks it succeeded', async () => {
    const seen: string[] = [];
    const r = runner({ kind: TEST, maxAttempts: 3, run: async (_payload, { job }) => void seen.push(job.id), giveUp: async () => {} });
    await r.start();
    const id = await enqueue();
    r.notify();
    await until(async () => (await store.getJob(id))?.state === 'succeeded');
    await r.stop();
    assert.deepEqual(seen, [id]);
  });

  it('retries a failing job with backoff and gives up after maxAttempts', async () => {
    let runs = 0;
    const gaveUp: string[] = [];
    const r = runner({
      kind: TEST,
      maxAttempts: 2,
      run: async () => {
        runs++;
        throw new Error('disk on fire');
      },
      giveUp: async (_payload, error, job) => void gaveUp.push(`${job.id}: ${error}`),
    });
    await r.start();
    const id = await enqueue();
    r.notify();
    await until(async () => (await store.getJob(id))?.state === 'failed', 8000);
    await r.stop();
    assert.equal(runs, 2);
    assert.deepEqual(gaveUp, [`${id}: disk on fire`]);
    assert.equal((await store.getJob(id))?.lastError, 'disk on fire');
  });

  it('lets another runner take a job whose lease lapsed, and aborts the first', async () => {
    let firstAborted = false;
    const stuck: TestHandler = {
      kind: TEST,
      maxAttempts: 5,
      run: (_payload, { signal }) =>
        new Promise<void>((_, reject) => {
          signal.addEventListener('abort', () => {
            firstAborted = true;
            reject(signal.reason as Error);
          });
        }),
      giveUp: async () => {},
    };
    const id = await enqueue();
    // A lease shorter than the renewal interval lapses: simulate a frozen process by claiming with a short lease.
    const claimed = await store.claimJob({ kinds: ['test'], owner: 'frozen', leaseMs: 50, now: systemClock.now() });
    assert.equal(claimed?.id, id);
    const taker = runner({ kind: TEST, maxAttempts: 5, run: async () => {}, giveUp: async () => {} });
    await taker.start();
    await until(async () => (await store.getJob(id))?.state === 'succeeded');
    await taker.stop();
    assert.equal((await store.getJob(id))?.attempts, 2);
    // The runner whose lease was taken notices at its next renewal and aborts its handler.
    const again = await enqueue();
    const slow = runner(stuck, 300);
    await slow.start();
    await until(async () => (await store.getJob(again))?.state === 'running');
    await store.releaseLeases({ owner: (await store.getJob(again))!.leaseOwner!, now: systemClock.now() });
    await store.claimJob({ kinds: ['test'], owner: 'thief', leaseMs: 60_000, now: systemClock.now() });
    await until(async () => firstAborted);
    await slow.stop();
    await store.finishJob({ id: again, owner: 'thief', now: systemClock.now(), outcome: 'succeeded' });
  });

  it('reclaims at start the jobs of a dead process on this host', async () => {
    const id = await enqueue();
    const [host, boot, pidns] = currentOwner().id.split(':');
    const deadOwner = `${host}:${boot}:${pidns}:999999:deadbeef`;
    await store.claimJob({ kinds: ['test'], owner: deadOwner, leaseMs: 3_600_000, now: systemClock.now() });
    const liveElsewhere = await enqueue('other');
    await store.claimJob({ kinds: ['other'], owner: 'another-host:1:cafe', leaseMs: 3_600_000, now: systemClock.now() });
    const r = runner({ kind: TEST, maxAttempts: 3, run: async () => {}, giveUp: async () => {} });
    await r.start();
    try {
      await until(async () => (await store.getJob(id))?.state === 'succeeded');
    } finally {
      await r.stop();
    }
    assert.equal((await store.getJob(liveElsewhere))?.state, 'running', 'leases of other hosts are left to expire');
    await store.releaseLeases({ owner: 'another-host:1:cafe', now: systemClock.now() });
  });

  it('stops a handler whose lease was taken, without retrying or giving up on its behalf', async () => {
    let gaveUp = false;
    let aborted = false;
    const r = runner(
      {
        kind: TEST,
        maxAttempts: 1,
        run: (_payload, { signal }) =>
          new Promise((_, reject) =>
            signal.addEventListener('abort', () => {
              aborted = true;
              reject(signal.reason as Error);
            }),
          ),
        giveUp: async () => void (gaveUp = true),
      },
      90,
    );
    const id = await enqueue();
    await r.start();
    try {
      r.notify();
      await until(async () => (await store.getJob(id))?.state === 'running');
      const first = (await store.getJob(id))!.leaseOwner!;
      await store.releaseLeases({ owner: first, now: systemClock.now() });
      await store.claimJob({ kinds: ['test'], owner: 'successor', leaseMs: 60_000, now: systemClock.now() });
      await until(async () => aborted);
    } finally {
      await r.stop();
    }
    assert.equal(gaveUp, false, 'the last attempt was not given up: the successor owns the job');
    const job = (await store.getJob(id))!;
    assert.equal(job.leaseOwner, 'successor');
    assert.equal(job.state, 'running');
    await store.finishJob({ id, owner: 'successor', now: systemClock.now(), outcome: 'succeeded' });
  });

  it('stops a handler whose lease cannot be renewed for longer than the lease', async () => {
    let aborted = false;
    const failing = { ...store, renewJobLease: async () => Promise.reject(new Error('database is locked')) };
    const handler: TestHandler = { kind: TEST, maxAttempts: 5, run: (_payload, { signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(signal.reason as Error)))), giveUp: async () => {} };
    const r = track(createJobRunner({ store: failing, workers: [{ handler, concurrency: 1 }], leaseMs: 120, pollMs: 20, clock: systemClock, log }));
    const id = await enqueue();
    await r.start();
    try {
      r.notify();
      await until(async () => aborted);
    } finally {
      await r.stop();
    }
    await store.releaseLeases({ owner: (await store.getJob(id))!.leaseOwner!, now: systemClock.now() });
  });

  it('puts running jobs back in the queue at shutdown', async () => {
    let started = false;
    const r = runner({
      kind: TEST,
      maxAttempts: 3,
      run: (_payload, { signal }) =>
        new Promise((_, reject) => {
          started = true;
          signal.addEventListener('abort', () => reject(signal.reason as Error));
        }),
      giveUp: async () => {},
    });
    await r.start();
    const id = await enqueue();
    r.notify();
    await until(async () => started);
    await r.stop();
    const job = (await store.getJob(id))!;
    assert.equal(job.state, 'queued');
    assert.equal(job.leaseOwner, undefined);
    assert.equal(job.lastError, 'interrupted by shutdown');
  });

  it('runs each kind at its own concurrency, so a slow kind never holds up another', async () => {
    const other: JobKind<Record<string, never>> = { ...TEST, kind: 'other' };
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let slowRunning = 0;
    let fastDone = 0;
    const slow: TestHandler = { kind: TEST, maxAttempts: 1, run: async () => void (slowRunning++, await gate), giveUp: async () => {} };
    const fast: JobHandler<Record<string, never>> = { kind: other, maxAttempts: 1, run: async () => void fastDone++, giveUp: async () => {} };
    const r = track(createJobRunner({ store, workers: [{ handler: slow, concurrency: 1 }, { handler: fast, concurrency: 1 }], leaseMs: 5000, pollMs: 20, clock: systemClock, log }));
    const slowIds = [await enqueue(), await enqueue(), await enqueue()];
    const fastIds = [await enqueue('other'), await enqueue('other'), await enqueue('other')];
    await r.start();
    await until(async () => fastDone === 3);
    assert.equal(slowRunning, 1, 'one slow job at a time');
    assert.equal((await Promise.all(slowIds.map((id) => store.getJob(id)))).filter((j) => j?.state === 'queued').length, 2);
    release();
    await until(async () => (await Promise.all(slowIds.map((id) => store.getJob(id)))).every((j) => j?.state === 'succeeded'));
    assert.ok((await Promise.all(fastIds.map((id) => store.getJob(id)))).every((j) => j?.state === 'succeeded'));
  });

  it('fails a job whose payload its kind cannot read, at once and without running it', async () => {
    let ran = false;
    const strict: JobHandler<{ uploadId: string }> = { kind: INGEST_JOB, maxAttempts: 5, run: async () => void (ran = true), giveUp: async () => {} };
    const r = track(createJobRunner({ store, workers: [{ handler: strict, concurrency: 1 }], leaseMs: 5000, pollMs: 20, clock: systemClock, log }));
    const id = await enqueue('ingest');
    await r.start();
    await until(async () => (await store.getJob(id))?.state === 'failed');
    assert.equal(ran, false);
    assert.equal((await store.getJob(id))?.attempts, 1);
    assert.match((await store.getJob(id))!.lastError!, /upload_id/);
  });

  it('stops without waiting forever for a handler that ignores its abort', async () => {
    let started = false;
    const deaf: TestHandler = { kind: TEST, maxAttempts: 3, run: () => new Promise<void>(() => void (started = true)), giveUp: async () => {} };
    const r = track(createJobRunner({ store, workers: [{ handler: deaf, concurrency: 1 }], leaseMs: 5000, pollMs: 20, clock: systemClock, log, stopGraceMs: 200 }));
    const id = await enqueue();
    await r.start();
    await until(async () => started);
    const begun = Date.now();
    await r.stop();
    assert.ok(Date.now() - begun < 2000);
    await store.releaseLeases({ owner: (await store.getJob(id))!.leaseOwner!, now: systemClock.now() });
  });
});

describe('lease owners', () => {
  it('are dead only on this boot, in this pid namespace, when their pid is gone or is ours', () => {
    const me = currentOwner();
    const [host, boot, pidns, pid] = me.id.split(':');
    assert.equal(me.isDead(me.id), false);
    assert.equal(me.isDead(`${host}:${boot}:${pidns}:${pid}:othernonce`), true, 'our own pid under another nonce is a predecessor');
    assert.equal(me.isDead(`${host}:${boot}:${pidns}:999999:x`), true);
    assert.equal(me.isDead(`${host}:${boot}:${pidns}:1:x`), false, 'pid 1 is alive');
    assert.equal(me.isDead(`${host}:${boot}:pid4026531999:${pid}:x`), false, 'another pid namespace (a container) cannot be judged');
    assert.equal(me.isDead(`${host}:other-boot:${pidns}:999999:x`), false, 'another boot or machine cannot be judged');
    assert.equal(me.isDead(`elsewhere:${boot}:${pidns}:999999:x`), false);
  });
});
