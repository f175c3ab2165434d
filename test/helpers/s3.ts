import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { startCephRgw, type CephRgw, type CephRgwOptions } from './ceph-rgw.ts';

/** What the server and the driver need to reach one bucket of a test gateway. */
export interface TestBucket {
  rgw: CephRgw;
  bucket: string;
  /** The server's settings for this bucket. */
  env: Record<string, string>;
  /** The driver's options for this bucket. */
  options: { bucket: string; region: string; endpoint: string; forcePathStyle: boolean; prefix: string; credentials: { accessKeyId: string; secretAccessKey: string } };
}

let shared: Promise<CephRgw> | undefined;

/** One real Ceph RGW per test process, started on first use; `stopSharedRgw` in the file's `after`. */
export const sharedRgw = (opts?: CephRgwOptions): Promise<CephRgw> => (shared ??= startCephRgw(opts));

export async function stopSharedRgw(): Promise<void> {
  const rgw = await shared?.catch(() => undefined);
  shared = undefined;
  await rgw?.stop();
}

/** A new, empty bucket on `rgw` (or the shared gateway), so that tests never see each other's objects. */
export async function newBucket(rgw?: CephRgw, prefix = ''): Promise<TestBucket> {
  const gw = rgw ?? (await sharedRgw());
  const bucket = `imgsrv-test-${randomBytes(6).toString('hex')}`;
  const credentials = { accessKeyId: gw.accessKeyId, secretAccessKey: gw.secretAccessKey };
  const client = new S3Client({ endpoint: gw.endpoint, region: gw.region, forcePathStyle: true, credentials });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return {
    rgw: gw,
    bucket,
    options: { bucket, region: gw.region, endpoint: gw.endpoint, forcePathStyle: true, prefix, credentials },
    env: {
      IMGSRV_BLOB_STORE: 's3',
      IMGSRV_S3_ENDPOINT: gw.endpoint,
      IMGSRV_S3_BUCKET: bucket,
      IMGSRV_S3_REGION: gw.region,
      IMGSRV_S3_ACCESS_KEY_ID: gw.accessKeyId,
      IMGSRV_S3_SECRET_ACCESS_KEY: gw.secretAccessKey,
      IMGSRV_S3_FORCE_PATH_STYLE: 'true',
      ...(prefix && { IMGSRV_S3_PREFIX: prefix }),
    },
  };
}
