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
  const send = async (request: FastifyRequest, reply: FastifyReply, doc: FeedDocument) => {
    const coding = negotiateEncoding(request.headers['accept-encoding']);
    const etag = coding ? `${doc.etag.slice(0, -1)}-${coding}"` : doc.etag;
    const headers = { etag, 'last-modified': doc.lastModified.toUTCString(), 'cache-control': 'public, no-cache', vary: 'accept-encoding' };
    const ifNoneMatch = request.headers['if-none-match'];
    const ifModifiedSince = request.headers['if-modified-since'];
    const { status } = decide({ method: 'GET', ifNoneMatch, ifModifiedSince }, { etag, lastModified: doc.lastModified, size: doc.body.length });
    if (status === 304) return reply.code(304).headers(headers).send();
    if (!coding) return reply.headers(headers).type('application/json').send(doc.body);
    return reply.headers({ ...headers, 'content-encoding': coding }).type('application/json').send(doc.encoded[coding]);
  };
  return (r: ContractRouter) => {
    r.define('getSimpleStreamsIndex', {}, async (request, reply) => send(request, reply, await deps.feed.document('index')));
    r.define('getSimpleStreamsImages', {}, async (request, reply) => send(request, reply, await deps.feed.document('images')));
  };
}
