import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { BlobReader, ByteRange } from '../blobs/driver.ts';
import { isMediaType } from '../domain/media-type.ts';
import { started } from '../lib/decorate.ts';
import { decide, type Validators } from './conditional.ts';
import { problem, sendProblem } from './v1/problem.ts';

/** An immutable byte representation (a blob, an artifact, an attachment) and how to read it. */
export interface Representation extends Validators {
  /** The recorded media type; one that cannot be a header value (stored before validation) is sent as application/octet-stream. */
  contentType: string;
  /** The file name a download is saved as, where one is known. */
  filename?: string;
  /** Headers a surface adds (the registry's Docker-Content-Digest). */
  headers?: Record<string, string>;
  open(range?: ByteRange): Promise<BlobReader>;
  /** Where a GET is redirected (307) instead of being served, with the response headers the target must send. */
  redirect?(response: { contentType: string; contentDisposition: string }): Promise<string>;
}

/**
 * Downloads are data, never pages of this origin: a browser saves them instead of rendering
 * them (even `text/html` an uploader chose), and would run nothing of them if it did.
 */
const DOWNLOAD_POLICY = "default-src 'none'; sandbox";
const FILENAME = /^[A-Za-z0-9._+:-]{1,255}$/;

/** Content-addressed bytes never change: caches may keep them for a year without revalidating. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Download buffers, in two sizes from two pools. A download copies through two buffers (one
 * read into while the other is written): up to FEW downloads at once get large ones (a few
 * syscalls per MiB), and once more run, new ones get small ones, so that memory grows by
 * 64 KiB per download rather than by 4 MiB (500 at once: about 48 MiB of buffers in all).
 */
const LARGE = 2 * 1024 * 1024;
const SMALL = 32 * 1024;
const FEW = 4;
const pools = new Map<number, { free: Buffer[]; limit: number }>([
  [LARGE, { free: [], limit: 2 * FEW }],
  [SMALL, { free: [], limit: 256 }],
]);
let downloading = 0;
const acquire = (size: number) => pools.get(size)!.free.pop() ?? Buffer.allocUnsafe(size);
const release = (b: Buffer) => {
  const pool = pools.get(b.length)!;
  if (pool.free.length < pool.limit) pool.free.push(b);
};

const header = (request: FastifyRequest, name: string) => {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
};

/**
 * Answers GET or HEAD for a representation with the contract's blob semantics: strong ETag,
 * Last-Modified, immutable Cache-Control, Accept-Ranges; 304 on a matching validator; one
 * byte range as 206; 416 with an unsatisfied-range Content-Range (`bytes *` + `/SIZE`) otherwise.
 * HEAD never opens the bytes. With `rep.redirect`, a GET that would send bytes is answered
 * `307` to where the storage serves them (validators and ranges are decided here first).
 */
export async function sendRepresentation(
  request: FastifyRequest,
  reply: FastifyReply,
  rep: Representation,
  /** How this surface answers an unsatisfiable range (its error envelope); problem+json by default. */
  unsatisfiable: (reply: FastifyReply, reason: string, headers: Record<string, string>) => unknown = (r, reason, headers) => sendProblem(r, problem(416, 'range_not_satisfiable', reason), headers),
): Promise<void> {
  const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
  const decision = decide(
    { method, range: header(request, 'range'), ifNoneMatch: header(request, 'if-none-match'), ifModifiedSince: header(request, 'if-modified-since'), ifRange: header(request, 'if-range') },
    rep,
  );
  const headers: Record<string, string> = {
    etag: rep.etag,
    'last-modified': rep.lastModified.toUTCString(),
    'cache-control': IMMUTABLE,
    'accept-ranges': 'bytes',
    'x-request-id': request.id,
    ...rep.headers,
  };
  if (decision.status === 304) {
    await reply.code(304).headers(headers).send();
    return;
  }
  if (decision.status === 416) {
    await unsatisfiable(reply, decision.reason, { 'content-range': `bytes */${rep.size}` });
    return;
  }
  const range = decision.status === 206 ? decision.range : undefined;
  const length = range ? range.end - range.start + 1 : rep.size;
  headers['content-type'] = isMediaType(rep.contentType) ? rep.contentType : 'application/octet-stream';
  headers['content-length'] = String(length);
  headers['content-disposition'] = rep.filename && FILENAME.test(rep.filename) ? `attachment; filename="${rep.filename}"` : 'attachment';
  headers['content-security-policy'] = DOWNLOAD_POLICY;
  headers['x-content-type-options'] = 'nosniff';
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${rep.size}`;
  if (method === 'GET' && rep.redirect) {
    const location = await rep.redirect({ contentType: headers['content-type'], contentDisposition: headers['content-disposition'] });
    await reply.code(307).headers({ location, 'cache-control': 'no-store', etag: rep.etag, 'x-request-id': request.id, ...rep.headers }).send();
    return;
  }
  if (method === 'HEAD') {
    reply.hijack();
    reply.raw.writeHead(200, headers).end();
    return;
  }
  // Open before hijacking, so that a missing file still becomes a problem response; from here on
  // every path closes the reader, and a failure ends the connection (the status line is gone).
  const reader = await rep.open(range);
  try {
    reply.hijack();
    reply.raw.writeHead(decision.status, headers);
    await pump(reader, reply.raw, length);
  } catch (err) {
    request.log.info({ err }, 'download ended early');
    reply.raw.destroy();
  } finally {
    await reader.close().catch((err: unknown) => request.log.warn({ err }, 'blob reader did not close'));
  }
}

/**
 * Copies `length` bytes from the reader to the response with two pooled buffers: one is read
 * into while the other is being written. A buffer goes back to the pool only when no read into
 * it and no socket write from it can still be pending.
 */
async function pump(reader: BlobReader, res: ServerResponse, length: number): Promise<void> {
  const size = downloading < FEW ? LARGE : SMALL;
  const buffers = [acquire(size), acquire(size)];
  downloading++;
  let reading: Promise<number> = Promise.resolve(0);
  let inflight: Promise<void> = Promise.resolve();
  const gone = untilClosed(res);
  try {
    let remaining = length;
    for (let turn = 0; remaining > 0; turn++) {
      const buffer = buffers[turn % 2]!;
      reading = started(reader.read(buffer.subarray(0, Math.min(size, remaining))));
      const n = await gone.guard(reading);
      if (n === 0) throw new Error(`stored bytes end ${remaining} bytes early`);
      await gone.guard(inflight);
      inflight = started(write(res, buffer.subarray(0, n)));
      remaining -= n;
    }
    await gone.guard(inflight);
    res.end();
  } finally {
    downloading--;
    // A read still in flight must finish before the caller closes the reader; after the client
    // went away a pending write's callback may never come, and those buffers stay with the dead
    // socket (and the GC).
    await reading.catch(() => undefined);
    const written = await gone.guard(inflight).then(yes, no);
    gone.stop();
    if (written) buffers.forEach(release);
  }
}

/**
 * Waits that end early, with an error, once the client closed the connection. One listener
 * for the whole download and one settled promise per wait: racing each wait against one
 * long-lived "closed" promise would add a reaction to it per chunk, kept until the end (some
 * 100 kB per 32 MiB download, 500 downloads at once: hundreds of MB of heap).
 */
function untilClosed(res: ServerResponse) {
  let closed: Error | undefined;
  let abort: ((e: Error) => void) | undefined;
  const onClose = () => {
    closed = new Error('client closed the connection');
    abort?.(closed);
  };
  res.once('close', onClose);
  return {
    guard<T>(p: Promise<T>): Promise<T> {
      if (closed) return Promise.reject(closed);
      return new Promise<T>((resolve, reject) => {
        abort = reject;
        p.then(resolve, reject);
      });
    },
    stop: () => res.off('close', onClose),
  };
}

const write = (res: ServerResponse, chunk: Buffer) =>
  new Promise<void>((resolve, reject) => {
    res.write(chunk, (err) => (err ? reject(err) : resolve()));
  });

const yes = () => true;
const no = () => false;
