import { CreateMultipartUploadCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createCas } from '../../src/blobs/cas.ts';
import { createS3Driver } from '../../src/blobs/s3/s3-driver.ts';
import { neverAborted, random, sha256, streamOf } from '../helpers/bytes.ts';
import { newBucket, stopSharedRgw } from '../helpers/s3.ts';
import { describeByteDriver, readAll } from '../suites/byte-driver.suite.ts';
import { rejectsWith } from '../suites/common.ts';

after(stopSharedRgw);

describeByteDriver('S3 on Ceph RGW', async () => {
  const { options } = await newBucket();
  return { driver: createS3Driver(options), cleanup: async () => {} };
});

describeByteDriver('S3 on Ceph RGW, under a key prefix', async () => {
  const { options } = await newBucket(undefined, 'images/');
  return { driver: createS3Driver(options), cleanup: async () => {} };
});

describe('S3 driver with parts of the sizes S3 cares about', () => {
  const MiB = 1024 * 1024;
  const roundTrip = async (chunks: Buffer[]) => {
    const { options } = await newBucket();
    const driver = createS3Driver(options);
    const cas = createCas(driver);
    const uploadId = randomUUID();
    const parts = [];
    for (const c of chunks) parts.push(await cas.writePart({ uploadId, body: streamOf(c), maxBytes: 1 << 30, signal: neverAborted() }));
    const whole = Buffer.concat(chunks);
    const result = await cas.commit({ uploadId, parts, expected: { digest: sha256(whole), size: whole.length }, signal: neverAborted() });
    assert.equal(result.outcome, 'created');
    await cas.discardUpload(uploadId);
    assert.ok((await readAll(await cas.open(result.digest), MiB)).equals(whole));
    const keys: string[] = [];
    for await (const key of driver.list()) keys.push(key);
    assert.deepEqual(keys, [`blobs/sha256/${result.digest.slice(7)}`]);
  };

  it('assembles parts of 5 MiB and more by server-side copy, a part over the write part size in several S3 parts', async () => {
    await roundTrip([random(6 * MiB), random(20 * MiB), random(MiB + 3)]);
  });

  it('assembles parts under 5 MiB by a streaming copy', async () => {
    await roundTrip([random(MiB), random(6 * MiB), random(7)]);
  });
});

describe('S3 driver housekeeping and races', () => {
  it('ends 10 racing commits of one digest with exactly one created (the conditional claim) and one intact blob', async () => {
    const { options } = await newBucket();
    const driver = createS3Driver(options);
    const cas = createCas(driver);
    const bytes = random(1024 * 1024);
    const sessions = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const uploadId = randomUUID();
        return { uploadId, parts: [await cas.writePart({ uploadId, body: streamOf(bytes), maxBytes: 1 << 30, signal: neverAborted() })] };
      }),
    );
    const outcomes = await Promise.all(sessions.map((s) => cas.commit({ ...s, signal: neverAborted() })));
    assert.deepEqual(outcomes.map((o) => o.outcome).sort(), ['created', ...Array<string>(9).fill('existed')]);
    assert.ok((await readAll(await cas.open(sha256(bytes)), 1 << 20)).equals(bytes));
    for (const s of sessions) await cas.discardUpload(s.uploadId);
    const keys: string[] = [];
    for await (const key of driver.list()) keys.push(key);
    assert.deepEqual(keys, [`blobs/sha256/${sha256(bytes).slice(7)}`], 'no claim, stage or part is left');
  });

  it('aborts the multipart uploads a dead writer left in an upload area when the area is discarded', async () => {
    const { options } = await newBucket();
    const s3 = new S3Client({ endpoint: options.endpoint, region: options.region, forcePathStyle: true, credentials: options.credentials });
    const uploadId = randomUUID();
    const Key = `uploads/${uploadId}/part-${'a'.repeat(32)}`;
    await s3.send(new CreateMultipartUploadCommand({ Bucket: options.bucket, Key }));
    const pending = async () => (await s3.send(new ListMultipartUploadsCommand({ Bucket: options.bucket }))).Uploads ?? [];
    assert.equal((await pending()).length, 1);
    await createCas(createS3Driver(options)).discardUpload(uploadId);
    assert.deepEqual(await pending(), []);
    s3.destroy();
  });
});

describe('S3 driver when the object store misbehaves', () => {
  it('answers unavailable within its deadlines while the gateway hangs, and works again after', { timeout: 120_000 }, async () => {
    const { rgw, options } = await newBucket();
    const cas = createCas(createS3Driver(options));
    const uploadId = randomUUID();
    const bytes = random(1000);
    await cas.commit({ uploadId, parts: [await cas.writePart({ uploadId, body: streamOf(bytes), maxBytes: 1 << 20, signal: neverAborted() })], signal: neverAborted() });
    await cas.discardUpload(uploadId);
    rgw.pauseGateway();
    try {
      let t = performance.now();
      await rejectsWith(cas.ping(), 'unavailable');
      assert.ok(performance.now() - t < 10_000, 'readiness learns of a hung store within seconds');
      t = performance.now();
      await rejectsWith(cas.stat(sha256(bytes)), 'unavailable');
      await rejectsWith(cas.open(sha256(bytes)), 'unavailable');
      assert.ok(performance.now() - t < 40_000, 'requests end instead of hanging');
    } finally {
      rgw.resumeGateway();
    }
    await cas.ping();
    assert.ok((await readAll(await cas.open(sha256(bytes)))).equals(bytes));
  });

  it('keeps control requests going while many downloads hold their streams open', { timeout: 60_000 }, async () => {
    const { options } = await newBucket();
    const cas = createCas(createS3Driver(options));
    const uploadId = randomUUID();
    const bytes = random(4 * 1024 * 1024);
    const { digest } = await cas.commit({ uploadId, parts: [await cas.writePart({ uploadId, body: streamOf(bytes), maxBytes: 1 << 30, signal: neverAborted() })], signal: neverAborted() });
    await cas.discardUpload(uploadId);
    // Slow clients: each download has read one chunk and waits.
    const readers = await Promise.all(Array.from({ length: 80 }, () => cas.open(digest)));
    await Promise.all(readers.map((r) => r.read(Buffer.alloc(1024))));
    await cas.ping();
    assert.deepEqual(await cas.stat(digest), { size: bytes.length });
    await Promise.all(readers.map((r) => r.close()));
  });

  it('ends a part write with unavailable, not as if the client had gone, when the store fails mid-write', { timeout: 120_000 }, async () => {
    const { rgw, options } = await newBucket();
    const cas = createCas(createS3Driver(options));
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= 64) return void this.push(null);
        sent++;
        setTimeout(() => this.push(random(1024 * 1024)), 30);
      },
    });
    const write = cas.writePart({ uploadId: randomUUID(), body, maxBytes: 1 << 30, signal: neverAborted() });
    await new Promise((r) => setTimeout(r, 300));
    await rgw.stopGateway();
    try {
      await rejectsWith(write, 'unavailable');
    } finally {
      await rgw.startGateway();
    }
  });
});
