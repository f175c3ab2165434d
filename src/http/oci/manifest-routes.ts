import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Principal } from '../../domain/auth.ts';
import { DomainError } from '../../domain/errors.ts';
import { MAX_MANIFEST_BYTES, OCI_INDEX } from '../../domain/oci.ts';
import type { RegistryBlobs } from '../../services/registry/blobs.ts';
import { MAX_PAGE, type Page } from '../../services/registry/blobs.ts';
import type { ManifestService, ServedManifest } from '../../services/registry/manifests.ts';

type Ctx = { request: FastifyRequest; reply: FastifyReply; name: string };
type Writer = Ctx & { actor: Principal };

const enc = (name: string) => name.split('/').map(encodeURIComponent).join('/');
const query = (request: FastifyRequest) => request.query as Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** Reads a manifest body, refusing one over the spec's 4 MiB before it is read in full. */
async function readManifest(request: FastifyRequest): Promise<Buffer> {
  const length = Number(request.headers['content-length'] ?? 0);
  if (length > MAX_MANIFEST_BYTES) throw new DomainError('payload_too_large', 'manifest_too_large', `a manifest may have at most ${MAX_MANIFEST_BYTES} bytes, not ${length}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of (request.body as Readable | undefined) ?? []) {
    size += (chunk as Buffer).length;
    if (size > MAX_MANIFEST_BYTES) throw new DomainError('payload_too_large', 'manifest_too_large', `a manifest may have at most ${MAX_MANIFEST_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * Whether the client's Accept allows the stored media type. A client that lists manifest
 * types and not this one (nor a wildcard) cannot read it: 404 `MANIFEST_UNKNOWN`, as the
 * spec asks of a manifest not available in an acceptable format. No Accept accepts anything.
 */
function accepts(request: FastifyRequest, mediaType: string): boolean {
  const header = request.headers.accept;
  if (!header) return true;
  const types = String(header).split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  return types.some((t) => t === mediaType || t === '*/*' || t === 'application/*' || !t.includes('manifest') && !t.includes('index'));
}

/** `n` and `last` of a listing; `n` is at most MAX_PAGE (an absent or unusable one asks for a full page). */
function page(request: FastifyRequest): { n: number; last?: string } {
  const q = query(request);
  const raw = one(q.n);
  const n = raw !== undefined && /^\d{1,6}$/.test(raw) ? Math.min(Number(raw), MAX_PAGE) : MAX_PAGE;
  return { n, last: one(q.last) };
}

/** `Link: <...>; rel="next"` when a listing has more (RFC 8288, as distribution sends it). */
function link(reply: FastifyReply, path: string, p: { n: number }, result: Page): void {
  if (!result.more || result.names.length === 0) return;
  reply.header('link', `<${path}?n=${p.n}&last=${encodeURIComponent(result.names.at(-1)!)}>; rel="next"`);
}

const json = (reply: FastifyReply, body: unknown, type = 'application/json') => reply.header('content-type', type).send(Buffer.from(JSON.stringify(body)));

export function manifestRoutes(deps: { manifests: ManifestService; registry: RegistryBlobs }) {
  const { manifests, registry } = deps;
  const send = (c: Ctx, m: ServedManifest) => {
    if (!accepts(c.request, m.mediaType)) throw new DomainError('not_found', 'manifest_unknown', `the manifest is stored as ${m.mediaType}, which the Accept header does not include`);
    return c.reply.headers({ 'content-type': m.mediaType, 'docker-content-digest': m.digest, etag: `"${m.digest}"` }).send(m.bytes);
  };

  return {
    read: async (c: Ctx, reference: string) => send(c, await manifests.get({ repository: c.name, reference })),

    async write(c: Writer, reference: string) {
      const bytes = await readManifest(c.request);
      const { digest, subject } = await manifests.put(c.actor, { repository: c.name, reference, bytes, contentType: c.request.headers['content-type'], signal: AbortSignal.timeout(60_000) });
      c.reply.code(201).headers({ location: `/v2/${enc(c.name)}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': '0' });
      if (subject) c.reply.header('oci-subject', subject);
      return c.reply.send();
    },

    async remove(c: Writer, reference: string) {
      await manifests.remove(c.actor, { repository: c.name, reference });
      return c.reply.code(202).header('content-length', '0').send();
    },

    async tags(c: Ctx) {
      const p = page(c.request);
      const result = await registry.tags(c.name, p);
      link(c.reply, `/v2/${enc(c.name)}/tags/list`, p, result);
      return json(c.reply, { name: c.name, tags: result.names });
    },

    async catalog(c: Omit<Ctx, 'name'>) {
      const p = page(c.request);
      const result = await registry.repositories(p);
      link(c.reply, '/v2/_catalog', p, result);
      return json(c.reply, { repositories: result.names });
    },

    /** The referrers list, sent as bytes so that its Content-Type is exactly the index type (clients compare it). */
    async referrers(c: Ctx, digest: string) {
      const artifactType = one(query(c.request).artifactType);
      const result = await manifests.referrers({ repository: c.name, digest, artifactType });
      if (result.filtered) c.reply.header('oci-filters-applied', 'artifactType');
      return c.reply.header('content-type', OCI_INDEX).send(result.bytes);
    },
  };
}
