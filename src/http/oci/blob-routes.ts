import type { FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import type { Principal } from '../../domain/auth.ts';
import { DomainError } from '../../domain/errors.ts';
import type { BlobService } from '../../services/blobs.ts';
import type { RegistryUploads } from '../../services/registry-uploads.ts';
import type { RegistryBlobs } from '../../services/registry/blobs.ts';
import { sendRepresentation } from '../send-representation.ts';
import { sendOciError } from './errors.ts';

export interface BlobRouteDeps {
  registry: RegistryBlobs;
  uploads: Pick<RegistryUploads, 'status' | 'append' | 'cancel'>;
  cas: BlobService;
}

type Ctx = { request: FastifyRequest; reply: FastifyReply; name: string };
type Writer = Ctx & { actor: Principal };

const enc = (name: string) => name.split('/').map(encodeURIComponent).join('/');
const uploadUrl = (name: string, id: string) => `/v2/${enc(name)}/blobs/uploads/${id}`;
const blobUrl = (name: string, digest: string) => `/v2/${enc(name)}/blobs/${digest}`;
/** `Range: 0-<last byte held>`, as the spec writes it (no unit). */
const range = (size: number) => `0-${Math.max(0, size - 1)}`;
const query = (request: FastifyRequest) => request.query as Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** A body the client sends (chunked, or with a length): not one of a GET-like request or `Content-Length: 0`. */
const hasBody = (request: FastifyRequest) => request.headers['transfer-encoding'] !== undefined || Number(request.headers['content-length'] ?? 0) > 0;
const declaredLength = (request: FastifyRequest) => (request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']));

/** The abort signal of a request body: fires when the client goes away before sending it all. */
function bodySignal(request: FastifyRequest): AbortSignal {
  const abort = new AbortController();
  request.raw.once('close', () => request.raw.complete || abort.abort(new Error('client closed the connection')));
  return abort.signal;
}

/**
 * `Content-Range: <start>-<end>` of a chunk (the spec's form; a `bytes ` prefix is tolerated):
 * where the chunk starts and how long it must be, checked against its Content-Length.
 */
function chunkRange(request: FastifyRequest): { at?: number; length?: number } {
  const header = request.headers['content-range'];
  if (header === undefined) return { length: declaredLength(request) };
  const m = /^(?:bytes )?(\d{1,15})-(\d{1,15})$/.exec(String(header).trim());
  const length = declaredLength(request);
  if (!m || Number(m[2]) < Number(m[1]) || (length !== undefined && length !== Number(m[2]) - Number(m[1]) + 1)) {
    throw new DomainError('invalid', 'invalid_content_range', `Content-Range ${JSON.stringify(String(header).slice(0, 60))} is not <start>-<end> matching the chunk's Content-Length`);
  }
  return { at: Number(m[1]), length: Number(m[2]) - Number(m[1]) + 1 };
}

export function blobRoutes(deps: BlobRouteDeps) {
  const { registry, uploads } = deps;

  /** Appends the request body to the session; a 416 carries the range the session holds. */
  async function append(c: Ctx, uploadId: string): Promise<number> {
    try {
      return await uploads.append({ repository: c.name, uploadId, ...chunkRange(c.request), body: (c.request.body as Readable | undefined) ?? Readable.from([]), signal: bodySignal(c.request) });
    } catch (e) {
      if (e instanceof DomainError && e.kind === 'range_not_satisfiable') {
        const { size } = await uploads.status(c.name, uploadId);
        return Promise.reject(Object.assign(e, { headers: { range: range(size), location: uploadUrl(c.name, uploadId) } }));
      }
      throw e;
    }
  }

  const created = (c: Ctx, digest: string) =>
    c.reply.code(201).headers({ location: blobUrl(c.name, digest), 'docker-content-digest': digest, 'content-length': '0' }).send();

  const accepted = (c: Ctx, id: string, size: number, status = 202) =>
    c.reply.code(status).headers({ location: uploadUrl(c.name, id), range: range(size), 'docker-upload-uuid': id, 'content-length': '0' }).send();

  return {
    /** GET/HEAD a blob the repository serves, with its digest; one byte range (206). */
    async read(c: Ctx, digest: string): Promise<void> {
      const blob = await registry.describe(c.name, digest);
      await sendRepresentation(
        c.request,
        c.reply,
        { etag: `"${blob.digest}"`, lastModified: blob.createdAt, size: blob.size, contentType: 'application/octet-stream', headers: { 'docker-content-digest': blob.digest }, open: (r) => deps.cas.open(blob.digest, r), ...(deps.cas.readUrl && { redirect: (response) => deps.cas.readUrl!(blob.digest, response) }) },
        (reply, reason, headers) => sendOciError(reply, { status: 416, code: 'BLOB_UNKNOWN', message: reason }, headers),
      );
    },

    async remove(c: Writer, digest: string) {
      await registry.remove(c.actor, c.name, digest);
      return c.reply.code(202).header('content-length', '0').send();
    },

    /** POST uploads/: a mount (201 or a new session), a monolithic upload (`?digest=`), or a new session (202). */
    async start(c: Writer) {
      const q = query(c.request);
      const mount = one(q.mount);
      if (mount !== undefined && (await registry.mount(c.actor, { repository: c.name, digest: mount, from: one(q.from) }))) return created(c, mount);
      const session = await registry.startUpload(c.name);
      const digest = one(q.digest);
      if (digest === undefined) return accepted(c, session.id, 0);
      await append(c, session.id);
      return created(c, await registry.finishUpload(c.actor, { repository: c.name, uploadId: session.id, digest, signal: bodySignal(c.request) }));
    },

    async status(c: Ctx, uploadId: string) {
      const { session, size } = await uploads.status(c.name, uploadId);
      return accepted(c, session.id, size, 204);
    },

    async patch(c: Writer, uploadId: string) {
      return accepted(c, uploadId, await append(c, uploadId));
    },

    /** PUT <upload>?digest=: the last chunk (if any), then the synchronous commit (201). */
    async finish(c: Writer, uploadId: string) {
      const digest = one(query(c.request).digest);
      if (digest === undefined) throw new DomainError('invalid', 'digest_invalid', 'the final PUT of an upload needs ?digest=<digest of the whole blob>');
      if (hasBody(c.request)) await append(c, uploadId);
      return created(c, await registry.finishUpload(c.actor, { repository: c.name, uploadId, digest, signal: bodySignal(c.request) }));
    },

    async cancel(c: Writer, uploadId: string) {
      await uploads.cancel(c.name, uploadId);
      return c.reply.code(204).send();
    },
  };
}
