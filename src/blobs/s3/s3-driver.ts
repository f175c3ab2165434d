import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable, Transform } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Digest } from '../../domain/digest.ts';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import { decorate } from '../../lib/decorate.ts';
import type { BlobReader, ByteDriver, ByteRange } from '../driver.ts';
import { newKey, s3Layout } from './layout.ts';

export interface S3DriverOptions {
  bucket: string;
  region: string;
  /** A custom endpoint (Ceph RGW, MinIO, Garage, R2...); AWS's own when absent. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`) instead of virtual-host style (`bucket.endpoint/key`). */
  forcePathStyle: boolean;
  /** Key prefix of everything this server writes (`images/`), so a bucket can be shared. */
  prefix: string;
  /** Static credentials; without them the AWS SDK's default chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Downloads are redirected to presigned GET URLs valid this long (`IMGSRV_S3_REDIRECT=presigned`); off when absent. */
  redirectTtlSeconds?: number;
  /** Pauses at a named crash-test point; see config `IMGSRV_FAILPOINTS`. */
  failpoint?: (name: string) => Promise<void>;
}

/** Part size of streamed writes (lib-storage buffers about two per write: memory stays bounded). */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE = 1;
/** S3 takes at most 10 000 parts: the largest single part write. */
const MAX_WRITE = 10_000 * PART_SIZE;
/** S3's bounds for multipart parts: all but the last at least 5 MiB, none over 5 GiB. */
const MIN_PART = 5 * 1024 * 1024;
const MAX_COPY = 5 * 1024 ** 3;
/** Ranges of a server-side multipart copy, and how many run at once. */
const COPY_RANGE = 1024 ** 3;
const COPY_CONCURRENCY = 4;
/** How long a server-side copy of a blob may take. */
const COPY_DEADLINE_MS = 30 * 60_000;
/** A claim older than this was left by a commit that died (it outlives the longest copy). */
const STALE_CLAIM_MS = 2 * COPY_DEADLINE_MS;
/** How long a control request (HEAD, DELETE, LIST, a small PUT) may take. */
const CONTROL_DEADLINE_MS = 15_000;
/** Sockets for body streams (downloads, part writes), apart from control requests, so that many slow downloads never starve a commit or a readiness probe. */
const STREAM_SOCKETS = 1024;
const CONTROL_SOCKETS = 64;

interface Range {
  key: string;
  start: number;
  end: number;
}

/**
 * `ByteDriver` on an S3-compatible object store. Each part write is an object of its own
 * (S3 cannot write at an offset; `offset` is only echoed), streamed with bounded memory through
 * lib-storage. `stage` streams the parts through `tap` once, in order. `commit` makes the blob
 * appear at its key at once, never partly: one part by a server-side copy; several by a
 * server-side multipart `UploadPartCopy` of the parts straight into the key when S3's part sizes
 * allow it (all but the last at least 5 MiB), else `stage` streams them into one object of the
 * upload and `commit` copies that. Which of several racing
 * commits of one digest created the blob is decided by one conditional write (`If-None-Match:
 * *`, honoured by AWS S3, Ceph RGW, MinIO) of a claim object. Nothing here is ever held whole in
 * memory.
 */
export function createS3Driver(opts: S3DriverOptions): ByteDriver {
  // The SDK warns once per process that its releases after January 2027 need Node 22; the
  // versions pinned here support Node 20. The SDK reads only this switch (a write, not a setting).
  // eslint-disable-next-line no-restricted-properties
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const makeClient = (maxSockets: number) =>
    new S3Client({
      region: opts.region,
      ...(opts.endpoint !== undefined && { endpoint: opts.endpoint }),
      forcePathStyle: opts.forcePathStyle,
      ...(opts.credentials && { credentials: opts.credentials }),
      // Checksums only where S3 requires them: the CAS verifies sha256 itself, and many
      // S3-compatible stores reject the newer default trailing checksums.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // A store that accepts connections and then goes silent fails a request after 2 minutes
      // of silence (control requests have their own, shorter deadlines below).
      requestHandler: { connectionTimeout: 5000, socketTimeout: 120_000, httpAgent: { keepAlive: true, maxSockets }, httpsAgent: { keepAlive: true, maxSockets } },
    });
  const client = makeClient(CONTROL_SOCKETS);
  const streams = makeClient(STREAM_SOCKETS);
  /** A control request with a deadline: a store that does not answer is `unavailable`, not a hang. */
  const within = async <T>(call: (abortSignal: AbortSignal) => Promise<T>, deadlineMs = CONTROL_DEADLINE_MS): Promise<T> => {
    const deadline = AbortSignal.timeout(deadlineMs);
    try {
      return await call(deadline);
    } catch (e) {
      if (deadline.aborted) throw new DomainError('unavailable', 'storage_unavailable', `the object store did not answer within ${Math.round(deadlineMs / 1000)} s; retry later`, { cause: e });
      throw e;
    }
  };
  const Bucket = opts.bucket;
  const layout = s3Layout(opts.prefix);
  const failpoint = opts.failpoint ?? (async () => {});
  /**
   * Stages of parts S3 can assemble by itself, from `stage` to `commit` (which follows at once
   * in the same process; after a crash the commit starts over with `stage`).
   */
  const assemblies = new Map<string, Range[]>();

  const head = async (Key: string) => {
    try {
      return await within((abortSignal) => client.send(new HeadObjectCommand({ Bucket, Key }), { abortSignal }));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };
  const remove = (Key: string) => within((abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key }), { abortSignal }));

  /**
   * GETs one object (or a range of it) as a stream; `onMissing` when it does not exist. The
   * answer must begin within the control deadline; the body then streams at the reader's pace.
   */
  async function getStream(Key: string, range: ByteRange | undefined, onMissing: () => DomainError, signal?: AbortSignal): Promise<Readable> {
    const late = new AbortController();
    const timer = setTimeout(() => late.abort(), CONTROL_DEADLINE_MS);
    try {
      const res = await streams.send(new GetObjectCommand({ Bucket, Key, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }), { abortSignal: signal ? AbortSignal.any([signal, late.signal]) : late.signal });
      return res.Body as Readable;
    } catch (e) {
      if (isNotFound(e)) throw onMissing();
      if (late.signal.aborted) throw new DomainError('unavailable', 'storage_unavailable', `the object store did not answer within ${CONTROL_DEADLINE_MS / 1000} s; retry later`, { cause: e });
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  const partMissing = (key: string) => () => new DomainError('unavailable', 'part_missing', `the bytes of part ${key} are gone from the object store`);

  /** A part's bytes, each chunk through `tap`, checking the object still has the size it was written with. */
  async function* partBytes(part: { key: string; size: number; object: string }, tap: (chunk: Uint8Array) => void, signal: AbortSignal): AsyncGenerator<Buffer> {
    if (part.size === 0) return;
    let read = 0;
    for await (const chunk of await getStream(part.object, undefined, partMissing(part.key), signal)) {
      read += (chunk as Buffer).length;
      tap(chunk as Buffer);
      yield chunk as Buffer;
    }
    if (read !== part.size) throw new DomainError('unavailable', 'part_missing', `part ${part.key} has ${read} bytes in the object store, not ${part.size}`);
  }

  /** Reads parts through `tap` only (for the hash). */
  async function readThrough(parts: readonly { key: string; size: number; object: string }[], tap: (chunk: Uint8Array) => void, signal: AbortSignal): Promise<void> {
    for (const part of parts) for await (const chunk of partBytes(part, tap, signal)) void chunk;
  }

  /** One object of `ranges` concatenated, by server-side multipart copy; nothing is left when it fails. */
  async function multipartCopy(Key: string, ranges: readonly Range[], signal: AbortSignal): Promise<void> {
    const { UploadId } = await within((abortSignal) => client.send(new CreateMultipartUploadCommand({ Bucket, Key }), { abortSignal }));
    // The first failure stops every worker, and the upload is aborted only once none is copying.
    const stop = new AbortController();
    const both = AbortSignal.any([signal, stop.signal]);
    try {
      const etags: string[] = new Array<string>(ranges.length);
      let next = 0;
      const worker = async () => {
        for (let i = next++; i < ranges.length && !both.aborted; i = next++) {
          const r = ranges[i]!;
          const res = await client.send(
            new UploadPartCopyCommand({ Bucket, Key, UploadId, PartNumber: i + 1, CopySource: `${Bucket}/${encodeURIComponent(r.key).replace(/%2F/g, '/')}`, CopySourceRange: `bytes=${r.start}-${r.end}` }),
            { abortSignal: both },
          );
          etags[i] = res.CopyPartResult!.ETag!;
        }
      };
      const results = await Promise.allSettled(
        Array.from({ length: Math.min(COPY_CONCURRENCY, ranges.length) }, () =>
          worker().catch((e: unknown) => {
            stop.abort();
            throw e;
          }),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      signal.throwIfAborted();
      await within((abortSignal) => client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }), { abortSignal }), COPY_DEADLINE_MS);
    } catch (e) {
      await within((abortSignal) => client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), { abortSignal })).catch(() => {});
      throw e;
    }
  }

  /** A whole object copied server-side to `to` (atomic for readers of `to`). */
  async function copyObject(from: string, to: string, size: number, signal: AbortSignal): Promise<void> {
    if (size <= MAX_COPY) {
      await client.send(new CopyObjectCommand({ Bucket, Key: to, CopySource: `${Bucket}/${encodeURIComponent(from).replace(/%2F/g, '/')}` }), { abortSignal: AbortSignal.any([signal, AbortSignal.timeout(COPY_DEADLINE_MS)]) });
      return;
    }
    const ranges: Range[] = [];
    for (let start = 0; start < size; start += COPY_RANGE) ranges.push({ key: from, start, end: Math.min(size, start + COPY_RANGE) - 1 });
    await multipartCopy(to, ranges, signal);
  }

  /** Writes a stream to `Key` with bounded memory; nothing is left when it fails. */
  async function streamTo(Key: string, Body: Readable): Promise<void> {
    const upload = new Upload({ client: streams, params: { Bucket, Key, Body }, partSize: PART_SIZE, queueSize: QUEUE, leavePartsOnError: false });
    try {
      await upload.done();
    } catch (e) {
      await remove(Key).catch(() => {});
      throw e;
    }
  }

  /**
   * Puts the claim of `digest` unless one exists: of racing callers exactly one gets its token
   * back (a conflict, S3's 409 to a conditional write racing another, is a lost race too). A
   * claim older than any copy can take is taken over.
   */
  async function claim(digest: Digest): Promise<string | undefined> {
    const Key = layout.claim(digest);
    const token = newKey();
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await within((abortSignal) => client.send(new PutObjectCommand({ Bucket, Key, Body: token, IfNoneMatch: '*' }), { abortSignal }));
        return token;
      } catch (e) {
        if (!isPreconditionFailed(e) && statusOf(e) !== 409) throw e;
      }
      const held = await head(Key);
      if (!held?.LastModified || Date.now() - held.LastModified.getTime() < STALE_CLAIM_MS) return undefined;
      await remove(Key);
    }
    return undefined;
  }

  /** Removes the claim of `digest` if it is still ours (a taken-over one is left to its new holder). */
  async function release(digest: Digest, token: string): Promise<void> {
    const Key = layout.claim(digest);
    const held = await streams.send(new GetObjectCommand({ Bucket, Key }), { abortSignal: AbortSignal.timeout(CONTROL_DEADLINE_MS) }).catch(() => undefined);
    if (held && (await held.Body!.transformToString()) === token) await remove(Key);
  }

  const driver: ByteDriver = {
    async openPart({ uploadId, offset }) {
      const key = newKey();
      const object = layout.part(uploadId, key);
      let written = 0;
      const stream = new Transform({
        highWaterMark: 1 << 20,
        transform(chunk: Buffer, _enc, callback) {
          written += chunk.length;
          if (written > MAX_WRITE) return callback(new DomainError('payload_too_large', 'part_too_large', `a single write to the object store takes at most ${MAX_WRITE} bytes; send it in several parts`));
          callback(null, chunk);
        },
      });
      const upload = new Upload({ client: streams, params: { Bucket, Key: object, Body: stream }, partSize: PART_SIZE, queueSize: QUEUE, leavePartsOnError: false });
      const done = upload.done();
      // An object-store failure ends the write with its own error, not as if the client had gone.
      done.catch((e: unknown) => stream.destroy(storageFailure(e, Bucket) as Error));
      return {
        stream,
        async finish() {
          try {
            await done;
          } catch (e) {
            await remove(object).catch(() => {});
            throw storageFailure(e, Bucket);
          }
          return offset === undefined ? { key } : { key, offset };
        },
        async fail(e) {
          // When the store failed first, lib-storage ended the stream it reads and the pipeline
          // saw only an abort: the upload's own error is the cause then. Otherwise (the client
          // went away, the part was refused) the upload ends with the stream; a part request
          // still in flight is aborted after a grace period.
          stream.destroy();
          const settled = await Promise.race([done.then(() => ({ error: undefined }), (error: unknown) => ({ error })), delay(2000)]);
          if (!settled) {
            await upload.abort().catch(() => {});
            await done.catch(() => {});
          }
          await remove(object).catch(() => {});
          const own = settled?.error as (Error & { code?: string }) | undefined;
          const storeFailed = own !== undefined && own.name !== 'AbortError' && own.code !== 'ERR_STREAM_PREMATURE_CLOSE' && !isDomainError(own);
          throw storageFailure(storeFailed ? own : e, Bucket);
        },
      };
    },

    async deletePart(uploadId, part) {
      await remove(layout.part(uploadId, part.key));
    },

    async stage({ uploadId, parts, tap, signal }) {
      const sources = parts.map((p) => ({ key: p.key, size: p.size, object: layout.part(uploadId, p.key) }));
      if (sources.length === 1) {
        // The one part is the whole blob: read once for the hash, and committed from where it is.
        await readThrough(sources, tap, signal);
        return { uploadId, key: sources[0]!.key };
      }
      const key = layout.newStageKey();
      const copyable = sources.length <= 10_000 && sources.every((s, i) => s.size > 0 && s.size <= MAX_COPY && (i === sources.length - 1 || s.size >= MIN_PART));
      if (copyable) {
        // Only hashed here: `commit` assembles the parts straight into the blob's key (S3 makes
        // a completed multipart upload visible at once), so no byte is copied twice.
        await readThrough(sources, tap, signal);
        assemblies.set(`${uploadId}/${key}`, sources.map((s) => ({ key: s.object, start: 0, end: s.size - 1 })));
      } else {
        const chunks = async function* () {
          for (const s of sources) yield* partBytes(s, tap, signal);
        };
        await streamTo(layout.staged(uploadId, key), Readable.from(chunks()));
      }
      return { uploadId, key };
    },

    stagingBytes: () => 0,
    room: async () => Number.POSITIVE_INFINITY,

    async commit(staged, digest) {
      const source = layout.staged(staged.uploadId, staged.key);
      const target = layout.blob(digest);
      await failpoint('blob-commit-before');
      let outcome: 'created' | 'existed' = 'existed';
      if (!(await head(target))) {
        const token = await claim(digest);
        try {
          // A commit that finished after the first look (and let its claim go) is seen here.
          if (!(token && (await head(target)))) {
            // The loser of a race copies too, so that no caller returns before the blob is there.
            const planned = assemblies.get(`${staged.uploadId}/${staged.key}`);
            if (planned) {
              await multipartCopy(target, planned, AbortSignal.timeout(COPY_DEADLINE_MS)).catch((e: unknown) => {
                throw isNotFound(e) ? partMissing(staged.key)() : e;
              });
            } else {
              const stagedObject = await head(source);
              if (!stagedObject) throw new DomainError('unavailable', 'part_missing', `the staged bytes of upload ${staged.uploadId} are gone from the object store`);
              await copyObject(source, target, stagedObject.ContentLength ?? 0, AbortSignal.timeout(COPY_DEADLINE_MS));
            }
            if (token) outcome = 'created';
          }
        } finally {
          if (token) await release(digest, token).catch(() => {});
        }
      }
      assemblies.delete(`${staged.uploadId}/${staged.key}`);
      if (layout.isStageKey(staged.key)) await remove(source).catch(() => {});
      await failpoint('blob-commit-after');
      return outcome;
    },

    async abandon(staged) {
      assemblies.delete(`${staged.uploadId}/${staged.key}`);
      if (layout.isStageKey(staged.key)) await remove(layout.staged(staged.uploadId, staged.key));
    },

    async discardUpload(uploadId) {
      const Prefix = layout.uploadArea(uploadId);
      for (let token: string | undefined, more = true; more; ) {
        const page = await within((abortSignal) => client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken: token }), { abortSignal }));
        const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length > 0) {
          const r = await within((abortSignal) => client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }), { abortSignal }));
          if (r.Errors?.length) throw new DomainError('unavailable', 'storage_unavailable', `the object store kept ${r.Errors.length} objects of upload ${uploadId} (${r.Errors[0]!.Code ?? 'error'}); retry later`);
        }
        token = page.NextContinuationToken;
        more = page.IsTruncated === true && token !== undefined;
      }
      // Multipart uploads of writes that died with their process (lib-storage aborts its own otherwise).
      for (let keyMarker: string | undefined, idMarker: string | undefined, more = true; more; ) {
        const page = await within((abortSignal) => client.send(new ListMultipartUploadsCommand({ Bucket, Prefix, KeyMarker: keyMarker, UploadIdMarker: idMarker }), { abortSignal }));
        for (const u of page.Uploads ?? []) await within((abortSignal) => client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key!, UploadId: u.UploadId! }), { abortSignal }));
        keyMarker = page.NextKeyMarker;
        idMarker = page.NextUploadIdMarker;
        more = page.IsTruncated === true && keyMarker !== undefined;
      }
    },

    async stat(digest) {
      const res = await head(layout.blob(digest));
      return res ? { size: res.ContentLength ?? 0 } : undefined;
    },

    async read(digest, range) {
      const body = await getStream(layout.blob(digest), range, () => new DomainError('not_found', 'blob_not_found', `blob ${digest} is not stored`));
      return streamReader(body);
    },

    ...(opts.redirectTtlSeconds !== undefined && {
      readUrl: (digest: Digest, response: { contentType: string; contentDisposition: string }) =>
        getSignedUrl(client, new GetObjectCommand({ Bucket, Key: layout.blob(digest), ResponseContentType: response.contentType, ResponseContentDisposition: response.contentDisposition }), { expiresIn: opts.redirectTtlSeconds }),
    }),

    async *list() {
      for (let token: string | undefined, more = true; more; ) {
        const page = await within((abortSignal) => client.send(new ListObjectsV2Command({ Bucket, Prefix: opts.prefix || undefined, ContinuationToken: token }), { abortSignal }));
        for (const o of page.Contents ?? []) yield o.Key!.slice(opts.prefix.length);
        token = page.NextContinuationToken;
        more = page.IsTruncated === true && token !== undefined;
      }
    },

    async ping() {
      const Key = `${opts.prefix}probes/ready-${newKey()}`;
      await within((abortSignal) => client.send(new PutObjectCommand({ Bucket, Key, Body: 'ok' }), { abortSignal }), 5000);
      await within((abortSignal) => client.send(new DeleteObjectCommand({ Bucket, Key }), { abortSignal }), 5000);
    },
  };
  return withStorageErrors(driver, Bucket);
}

/** Reads a response body into caller-owned buffers, keeping what did not fit for the next read. */
function streamReader(body: Readable): BlobReader {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer = Buffer.alloc(0);
  return {
    async read(into) {
      if (pending.length === 0) {
        const next = await chunks.next();
        if (next.done) return 0;
        pending = next.value;
      }
      const n = Math.min(into.length, pending.length);
      into.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    },
    async close() {
      body.destroy();
    },
  };
}

interface SdkError {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
}
const statusOf = (e: unknown) => (e as SdkError)?.$metadata?.httpStatusCode;
const isNotFound = (e: unknown) => statusOf(e) === 404 && (e as SdkError).name !== 'NoSuchBucket';
const isPreconditionFailed = (e: unknown) => statusOf(e) === 412;

/**
 * An object-store failure in domain terms: anything the SDK or the network reports (a refused
 * connection, a timeout, a 5xx, refused credentials, a missing bucket) is `unavailable`, so the
 * API answers 503 and the work is retried; `DomainError`s and aborts pass through unchanged.
 */
function storageFailure(e: unknown, bucket: string): unknown {
  if (isDomainError(e) || (e as Error)?.name === 'AbortError') return e;
  const err = e as SdkError & Error;
  // Only the kind of failure goes to clients; the whole error is the cause, for the server log.
  const what = err?.name === 'NoSuchBucket' ? `bucket ${bucket} does not exist` : `${err?.code ?? err?.name ?? 'error'}${statusOf(e) ? `, HTTP ${statusOf(e)}` : ''}`;
  return new DomainError('unavailable', 'storage_unavailable', `the object store failed (${what}); retry later`, { cause: e });
}

const withStorageErrors = (driver: ByteDriver, bucket: string): ByteDriver =>
  decorate(driver, async (_method, call) => {
    try {
      return await call();
    } catch (e) {
      throw storageFailure(e, bucket);
    }
  });
