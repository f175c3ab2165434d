import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createS3Driver } from '../../src/blobs/s3/s3-driver.ts';
import { sharedRgw } from './s3.ts';

/** Where a test data dir records the S3 settings of its own bucket (`IMGSRV_TEST_BLOBS=s3`). */
export const BUCKET_FILE = '.test-s3-bucket.json';

/**
 * The blob storage behind a test server's data dir, whichever it is (the data dir itself, or the
 * data dir's own bucket under `IMGSRV_TEST_BLOBS=s3`), for tests that look at or damage stored
 * bytes directly, as an operator's mistake or a crash would.
 */
export interface TestStorage {
  kind: 'fs' | 's3';
  hasBlob(digest: string): Promise<boolean>;
  /** The hex digests of every stored blob. */
  blobs(): Promise<string[]>;
  /** Upload ids with an area in the storage (on the filesystem also an empty one). */
  uploadAreas(): Promise<string[]>;
  /** What one upload's area holds: file or object names. */
  uploadArea(uploadId: string): Promise<string[]>;
  /** Removes every stored blob's bytes (their records stay). */
  dropAllBlobs(): Promise<void>;
  /** Takes a blob's bytes out of the storage; the function returned puts them back. */
  hideBlob(digest: string): Promise<() => Promise<void>>;
  /** Cuts a blob's stored bytes to their first `keep` (as a damaged disk would); the function returned restores them. */
  truncateBlob(digest: string, keep: number): Promise<() => Promise<void>>;
  /** Upload areas and temporary objects left behind (nothing, once every upload has ended). */
  leftovers(): Promise<string[]>;
  /** Makes the storage unwritable (readiness must fail); the function returned repairs it. */
  breakStorage(): Promise<() => Promise<void>>;
}

export async function testStorage(dataDir: string): Promise<TestStorage> {
  const settings = await readFile(join(dataDir, BUCKET_FILE), 'utf8').catch(() => undefined);
  return settings ? s3Storage(JSON.parse(settings) as Record<string, string>) : fsStorage(dataDir);
}

function fsStorage(dataDir: string): TestStorage {
  const blobFile = (digest: string) => join(dataDir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7));
  const blobsDir = join(dataDir, 'blobs', 'sha256');
  return {
    kind: 'fs',
    hasBlob: async (digest) => (await stat(blobFile(digest)).catch(() => undefined)) !== undefined,
    blobs: async () => (await readdir(blobsDir, { recursive: true })).map(String).filter((f) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(f)).map((f) => f.slice(3)),
    uploadAreas: () => readdir(join(dataDir, 'uploads')),
    uploadArea: (uploadId) => readdir(join(dataDir, 'uploads', uploadId)),
    async dropAllBlobs() {
      for (const dir of await readdir(blobsDir)) await rm(join(blobsDir, dir), { recursive: true });
    },
    async hideBlob(digest) {
      await rename(blobFile(digest), `${blobFile(digest)}.away`);
      return () => rename(`${blobFile(digest)}.away`, blobFile(digest));
    },
    async truncateBlob(digest, keep) {
      const whole = await readFile(blobFile(digest));
      await truncate(blobFile(digest), keep);
      return () => writeFile(blobFile(digest), whole);
    },
    async leftovers() {
      const uploads = await readdir(join(dataDir, 'uploads'));
      const temps = (await readdir(dataDir, { recursive: true })).filter((f) => String(f).endsWith('.tmp'));
      return [...uploads.map((u) => `uploads/${u}`), ...temps.map(String)];
    },
    async breakStorage() {
      const tmp = join(dataDir, 'tmp');
      await rm(tmp, { recursive: true });
      await writeFile(tmp, 'not a directory');
      return async () => {
        await rm(tmp);
        await mkdir(tmp);
      };
    },
  };
}

function s3Storage(env: Record<string, string>): TestStorage {
  const Bucket = env.IMGSRV_S3_BUCKET!;
  const options = {
    bucket: Bucket,
    region: env.IMGSRV_S3_REGION!,
    endpoint: env.IMGSRV_S3_ENDPOINT!,
    forcePathStyle: true,
    prefix: env.IMGSRV_S3_PREFIX ?? '',
    credentials: { accessKeyId: env.IMGSRV_S3_ACCESS_KEY_ID!, secretAccessKey: env.IMGSRV_S3_SECRET_ACCESS_KEY! },
  };
  const client = new S3Client({ endpoint: options.endpoint, region: options.region, forcePathStyle: true, credentials: options.credentials });
  const key = (digest: string) => `${options.prefix}blobs/sha256/${digest.slice(7)}`;
  const move = async (from: string, to: string) => {
    await client.send(new CopyObjectCommand({ Bucket, Key: to, CopySource: `${Bucket}/${from}` }));
    await client.send(new DeleteObjectCommand({ Bucket, Key: from }));
  };
  const keys = async () => {
    const all: string[] = [];
    for await (const k of createS3Driver(options).list()) all.push(k);
    return all;
  };
  return {
    kind: 's3',
    hasBlob: (digest) => client.send(new HeadObjectCommand({ Bucket, Key: key(digest) })).then(() => true, () => false),
    blobs: async () => (await keys()).filter((k) => k.startsWith('blobs/sha256/')).map((k) => k.slice('blobs/sha256/'.length)),
    uploadAreas: async () => [...new Set((await keys()).filter((k) => k.startsWith('uploads/')).map((k) => k.split('/')[1]!))],
    uploadArea: async (uploadId) => (await keys()).filter((k) => k.startsWith(`uploads/${uploadId}/`)).map((k) => k.slice(`uploads/${uploadId}/`.length)),
    async dropAllBlobs() {
      for (const k of await keys()) if (k.startsWith('blobs/')) await client.send(new DeleteObjectCommand({ Bucket, Key: `${options.prefix}${k}` }));
    },
    async hideBlob(digest) {
      await move(key(digest), `${options.prefix}away/${digest.slice(7)}`);
      return () => move(`${options.prefix}away/${digest.slice(7)}`, key(digest));
    },
    async truncateBlob(digest, keep) {
      const got = await client.send(new GetObjectCommand({ Bucket, Key: key(digest) }));
      const whole = Buffer.from(await got.Body!.transformToByteArray());
      const put = (body: Buffer) => client.send(new PutObjectCommand({ Bucket, Key: key(digest), Body: body })).then(() => undefined);
      await put(whole.subarray(0, keep));
      return () => put(whole);
    },
    leftovers: async () => (await keys()).filter((k) => !k.startsWith('blobs/')),
    async breakStorage() {
      const rgw = await sharedRgw();
      await rgw.stopGateway();
      return () => rgw.startGateway();
    },
  };
}
