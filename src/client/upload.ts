import type { Body, Schemas, UploadSession } from './client.ts';
import type { ImgsrvClient } from './operations.ts';
import type { PollOptions } from './poll.ts';

/** Bytes to upload: their digest and size (computed by the caller, who has the file) and a way to read any range of them. */
export interface ByteSource {
  /** `sha256:` followed by 64 lowercase hex digits. */
  digest: `sha256:${string}`;
  size: number;
  /** The bytes [start, end) as a request body: a buffer, or a stream for large parts. */
  read(start: number, end: number): Body | Promise<Body>;
}

export interface UploadOptions extends PollOptions {
  /** Size of every part but the last (default 64 MiB). */
  partSize?: number;
  /** Declare the part size to the server (`part_size_bytes`), so it refuses parts of any other size. */
  declarePartSize?: boolean;
  /** Parts in flight at once (default 4). */
  parallel?: number;
  /** Continue this session instead of beginning one: only parts it does not hold are sent. */
  resume?: string;
  mediaTypeHint?: string;
  filenameHint?: string;
  /** Called after every part the server acknowledged, with the bytes it holds so far. */
  onProgress?: (sentBytes: number, totalBytes: number) => void;
}

/**
 * The publishing flow's upload steps as one call: begin (answered at once with `ready` when the
 * server holds the digest already), send every part the session does not hold yet (in
 * parallel, so an interrupted upload resumes with `resume`), complete with the parts the server
 * acknowledged, and wait while it verifies. Resolves with the `ready` session.
 * @throws Error naming the failure reason when the server's verification failed.
 */
export async function uploadBytes(client: ImgsrvClient, source: ByteSource, o: UploadOptions = {}): Promise<UploadSession> {
  const partSize = Math.max(1, o.partSize ?? 64 << 20);
  let session: UploadSession;
  if (o.resume) session = await client.getUpload(o.resume);
  else {
    ({ session } = await client.beginUpload({
      expected_digest: source.digest,
      expected_size_bytes: source.size,
      ...(o.declarePartSize && { part_size_bytes: partSize }),
      ...(o.mediaTypeHint && { media_type_hint: o.mediaTypeHint }),
      ...(o.filenameHint && { filename_hint: o.filenameHint }),
    }));
  }
  if (session.state === 'ready') return session;
  if (session.state === 'created' || session.state === 'uploading') {
    const count = Math.max(1, Math.ceil(source.size / partSize));
    const held = new Map((session.received_parts ?? []).map((p) => [p.part_number, p]));
    const parts: Schemas['CompleteUploadPart'][] = [];
    let sent = 0;
    const missing: number[] = [];
    for (let n = 1; n <= count; n++) {
      const size = Math.min(partSize, source.size - (n - 1) * partSize);
      const have = held.get(n);
      if (have && have.size_bytes === size) {
        parts[n - 1] = { number: n, etag: have.etag, size_bytes: have.size_bytes };
        sent += size;
      } else missing.push(n);
    }
    o.onProgress?.(sent, source.size);
    const send = async () => {
      for (let n = missing.shift(); n !== undefined; n = missing.shift()) {
        const start = (n - 1) * partSize;
        const end = Math.min(source.size, start + partSize);
        const part = await client.putPart(session.id, n, await source.read(start, end), o.signal);
        parts[n - 1] = { number: n, etag: part.etag, size_bytes: part.size_bytes };
        sent += part.size_bytes;
        o.onProgress?.(sent, source.size);
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.parallel ?? 4, missing.length) }, send));
    session = await client.completeUpload(session.id, parts);
  }
  const done = await client.waitForUpload(session.id, o);
  if (done.state !== 'ready') throw new Error(`upload ${done.id} ended ${done.state}: ${done.failure_reason ?? 'no reason given'}`);
  return done;
}
