/**
 * `npm run bench` (third part): imgsrv on S3 against the AWS SDK's own transfer of the same file
 * to and from the same bucket, in the same run, on a real Ceph RGW this bench starts (in-memory
 * OSD, so the object store itself is not limited by the disk):
 *
 *   SDK PutObject  = lib-storage's Upload of the file (8 MiB parts, 4 at once): what a client
 *                    library gets from this gateway on this machine
 *   SDK GetObject  = one GET of the object, streamed to nowhere
 *   imgsrv upload  = begin → BENCH_PARTS parallel part PUTs (curl) → complete → `ready` (the
 *                    contract path: parts stored as objects, assembled by server-side copy,
 *                    sha256 streamed once, committed by a server-side copy)
 *   imgsrv download = one GET of the whole blob (curl to /dev/null), streamed from the bucket
 *
 * Medians of BENCH_ROUNDS rounds (default 3); size BENCH_S3_MB (default 256: memstore keeps
 * about twice the stored bytes in RAM, and each round stores the file four times over).
 */
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { startCephRgw } from '../helpers/ceph-rgw.ts';
import { newBucket } from '../helpers/s3.ts';
import { makeDataDir, removeDir } from '../helpers/server.ts';
import { median, printTable, type Row } from './table.ts';
import { measureUpload } from './upload-download.ts';

const MB = 1024 * 1024;
const sizeMb = Number(process.env.BENCH_S3_MB ?? 256);
const PARTS = Number(process.env.BENCH_PARTS ?? 4);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const now = () => performance.now() / 1000;

export async function s3Bench(): Promise<Row[]> {
  const size = sizeMb * MB;
  const work = await makeDataDir();
  const rgw = await startCephRgw({ memBytes: Math.max(4 * 1024 ** 3, 12 * size) });
  console.log(`\nimgsrv bench on S3 (Ceph RGW ${rgw.endpoint}, in-memory OSD): ${sizeMb} MiB, ${PARTS} parallel parts, ${rounds} rounds`);
  try {
    const file = join(work, 'payload.bin');
    execFileSync('sh', ['-c', `head -c ${size} /dev/urandom > ${file}`]);
    const digest = execFileSync('openssl', ['dgst', '-sha256', '-r', file], { encoding: 'utf8' }).split(' ')[0]!;
    const part = Math.ceil(size / PARTS);
    const parts = Array.from({ length: PARTS }, (_, i) => {
      const path = join(work, `part-${i + 1}`);
      execFileSync('dd', [`if=${file}`, `of=${path}`, 'bs=1M', 'iflag=skip_bytes,count_bytes', `skip=${i * part}`, `count=${Math.min(part, size - i * part)}`, 'status=none']);
      return path;
    });
    const results: { sdkPutS: number; sdkGetS: number; uploadS: number; downloadS: number; peakRss: number }[] = [];
    for (let round = 0; round < rounds; round++) {
      const bucket = await newBucket(rgw);
      const s3 = new S3Client({ endpoint: rgw.endpoint, region: rgw.region, forcePathStyle: true, credentials: bucket.options.credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
      let t = now();
      await new Upload({ client: s3, params: { Bucket: bucket.bucket, Key: 'sdk/payload', Body: createReadStream(file) }, partSize: 8 * MB, queueSize: 4 }).done();
      const sdkPutS = now() - t;
      t = now();
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: 'sdk/payload' }));
      for await (const chunk of got.Body as Readable) void chunk;
      const sdkGetS = now() - t;
      s3.destroy();
      const measured = await measureUpload({ work, size, digest, round, path: 'contract', parts, download: true, env: bucket.env });
      const uploadS = measured.upload.partsS + measured.upload.commitS;
      results.push({ sdkPutS, sdkGetS, uploadS, downloadS: measured.downloadS, peakRss: measured.peakRss });
      console.log(`round ${round + 1}: SDK put ${(sizeMb / sdkPutS).toFixed(0)}, imgsrv upload ${(sizeMb / uploadS).toFixed(0)} (parts ${measured.upload.partsS.toFixed(2)} s + verify/commit ${measured.upload.commitS.toFixed(2)} s), SDK get ${(sizeMb / sdkGetS).toFixed(0)}, imgsrv download ${(sizeMb / measured.downloadS).toFixed(0)} MB/s`);
    }
    const m = (f: (r: (typeof results)[number]) => number) => median(results.map(f));
    const S3 = 'S3 (Ceph RGW, in-memory OSD)';
    const put = 'SDK PutObject (lib-storage Upload)';
    const got = 'SDK GetObject';
    return [
      { section: S3, label: put, value: sizeMb / m((r) => r.sdkPutS), unit: 'MB/s' },
      { section: S3, label: `imgsrv upload, ${PARTS} equal parts`, value: sizeMb / m((r) => r.uploadS), unit: 'MB/s', baseline: put, ratio: m((r) => r.sdkPutS / r.uploadS) },
      { section: S3, label: got, value: sizeMb / m((r) => r.sdkGetS), unit: 'MB/s' },
      { section: S3, label: 'imgsrv download, whole blob', value: sizeMb / m((r) => r.downloadS), unit: 'MB/s', baseline: got, ratio: m((r) => r.sdkGetS / r.downloadS) },
      { section: S3, label: 'imgsrv: peak RSS over an upload and a download', value: Math.max(...results.map((r) => r.peakRss)), unit: 'MB', note: `${sizeMb} MiB` },
    ];
  } finally {
    await rgw.stop();
    await removeDir(work);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) printTable(await s3Bench());
