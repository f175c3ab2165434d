import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FeedDocument, FeedService } from '../../services/feed.ts';
import { decide } from '../conditional.ts';
import type { ContractRouter } from '../v1/route.ts';

/** The coding a client prefers among those the feed is stored in (RFC 9110 §12.5.3): br, gzip, or none. */
export function negotiateEncoding(acceptEncoding: string | undefined): 'br' | 'gzip' | undefined {
  if (!acceptEncoding) return undefined;
  const q = new Map<string, number>();
  for (const item of acceptEncoding.toLowerCase().split(',')) {
    const [coding, ...params] = item.trim().split(';');
    const weight = params.map((p) => /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    if (coding) q.set(coding.trim(), weight === undefined ? 1 : Number(weight));
  }
  const of = (coding: 'br' | 'gzip') => q.get(coding) ?? (coding === 'gzip' ? q.get('x-gzip') : undefined) ?? q.get('*') ?? 0;
  const best = (['br', 'gzip'] as const).filter((c) => of(c) > 0).sort((a, b) => of(b) - of(a))[0];
  return best;
}

/**
 * `/streams/v1/index.json` and `/streams/v1/images.json`: the Incus Simple Streams feed, public,
 * from a snapshot built once per catalog revision, stored plain and pre-compressed (br, gzip by
 * `Accept-Encoding`; each coding its own strong ETag), with Last-Modified (conditional GET → 304).
 */
export function streamsRoutes(deps: { feed: FeedService }) {
  // Per document and coding, built once: the response headers (and the validators in them).
  const variants = new WeakMap<FeedDocument, Record<'identity' | 'br' | 'gzip', { headers: Record<string, string>; body: string | Buffer }>>();
  const variantsOf = (doc: FeedDocument) => {
    let v = variants.get(doc);
    if (!v) {
      const common = { 'last-modified': doc.lastModified.toUTCString(), 'cache-control': 'public, no-cache', vary: 'accept-encoding', 'content-type': 'application/json' };
      const coded = (coding: 'br' | 'gzip') => ({ headers: { ...common, etag: `${doc.etag.slice(0, -1)}-${coding}"`, 'content-encoding': coding }, body: doc.encoded[coding] });
      v = { identity: { headers: { ...common, etag: doc.etag }, body: doc.body }, br: coded('br'), gzip: coded('gzip') };
      variants.set(doc, v);
    }
    return v;
  };
  const send = async (request: FastifyRequest, reply: FastifyReply, doc: FeedDocument) => {
    const { headers, body } = variantsOf(doc)[negotiated(request.headers['accept-encoding']) ?? 'identity'];
    const ifNoneMatch = request.headers['if-none-match'];
    const ifModifiedSince = request.headers['if-modified-since'];
    if (ifNoneMatch !== undefined || ifModifiedSince !== undefined) {
      const { status } = decide({ method: 'GET', ifNoneMatch, ifModifiedSince }, { etag: headers.etag!, lastModified: doc.lastModified, size: doc.body.length });
      if (status === 304) {
        const { 'content-type': _, 'content-encoding': __, ...validators } = headers;
        return reply.code(304).headers(validators).send();
      }
    }
    return reply.headers(headers).send(body);
  };
  return (r: ContractRouter) => {
    r.define('getSimpleStreamsIndex', {}, async (request, reply) => send(request, reply, await deps.feed.document('index')));
    r.define('getSimpleStreamsImages', {}, async (request, reply) => send(request, reply, await deps.feed.document('images')));
  };
}

/** negotiateEncoding, remembered for the few Accept-Encoding values clients send. */
const negotiations = new Map<string | undefined, ReturnType<typeof negotiateEncoding>>();
function negotiated(acceptEncoding: string | undefined) {
  let coding = negotiations.get(acceptEncoding);
  if (coding === undefined && !negotiations.has(acceptEncoding)) {
    coding = negotiateEncoding(acceptEncoding);
    if (negotiations.size >= 256) negotiations.clear();
    negotiations.set(acceptEncoding, coding);
  }
  return coding;
}
