import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Job } from '../../src/domain/job.ts';
import { currentOwner } from '../../src/jobs/owner.ts';
import { createJobRunner, type JobHandler } from '../../src/jobs/runner.ts';
import { systemClock } from '../../src/lib/clock.ts';
import type { MetadataStore } from '../../src/store/metadata-store.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { openTestStore } from '../helpers/store.ts';

const log = pino({ level: 'silent' });

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
  afterEach(async () => {
    await store.close();
    await removeDir(dir);
  });

  const runner = (handler: JobHandler, leaseMs = 2000) => createJobRunner({ store, handlers: [handler], leaseMs, pollMs: 20, concurrency: 2, clock: systemClock, log });
  const enqueue = async (kind = 'test') => {
    const id = randomUUID();
    await store.enqueueJob({ id, kind, payload: {}, now: systemClock.now() });
    return id;
  };

  it('runs an enqueued job at once when notified and marks it succeeded', async () => {
    const seen: string[] = [];
    const r = runner({ kind: 'test', maxAttempts: 3, run: async (job) => void seen.push(job.id), giveUp: async () => {} });
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
      kind: 'test',
      maxAttempts: 2,
      run: async () => {
        runs++;
        throw new Error('disk on fire');
      },
      giveUp: async (job, error) => void gaveUp.push(`${job.id}: ${error}`),
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
    const stuck: JobHandler = {
      kind: 'test',
      maxAttempts: 5,
      run: (_job: Job, signal: AbortSignal) =>
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
    const taker = runner({ kind: 'test', maxAttempts: 5, run: async () => {}, giveUp: async () => {} });
    await taker.start();
    await until(async () => (await store.getJob(id))?.state === 'succeeded');
    await taker.stop();
    assert.equal((await store.getJob(id))?.attempts, 2);
    // The runner whose lease was taken notices at its next renewal and aborts its handler.
    const again = await enqueue();
    const slow = runner(stuck, 90);
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
    const r = runner({ kind: 'test', maxAttempts: 3, run: async () => {}, giveUp: async () => {} });
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
        kind: 'test',
        maxAttempts: 1,
        run: (_job, signal) =>
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
    const r = createJobRunner({
      store: failing,
      handlers: [{ kind: 'test', maxAttempts: 5, run: (_job, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => ((aborted = true), reject(signal.reason as Error)))), giveUp: async () => {} }],
      leaseMs: 120,
      pollMs: 20,
      concurrency: 1,
      clock: systemClock,
      log,
    });
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
      kind: 'test',
      maxAttempts: 3,
      run: (_job, signal) =>
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
