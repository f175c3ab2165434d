import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FeedDocument, FeedService } from '../../services/feed.ts';
import { decide } from '../conditional.ts';
import type { ContractRouter } from '../v1/route.ts';

/**
 * `/streams/v1/index.json` and `/streams/v1/images.json`: the Incus Simple Streams feed, public,
 * from a cached snapshot with a strong ETag and Last-Modified (conditional GET → 304).
 */
export function streamsRoutes(deps: { feed: FeedService }) {
  const send = async (request: FastifyRequest, reply: FastifyReply, doc: FeedDocument) => {
    const headers = { etag: doc.etag, 'last-modified': doc.lastModified.toUTCString(), 'cache-control': 'public, no-cache' };
    const ifNoneMatch = request.headers['if-none-match'];
    const ifModifiedSince = request.headers['if-modified-since'];
    const { status } = decide({ method: 'GET', ifNoneMatch, ifModifiedSince }, { etag: doc.etag, lastModified: doc.lastModified, size: doc.body.length });
    if (status === 304) return reply.code(304).headers(headers).send();
    return reply.headers(headers).type('application/json').send(doc.body);
  };
  return (r: ContractRouter) => {
    r.define('getSimpleStreamsIndex', {}, async (request, reply) => send(request, reply, await deps.feed.document('index')));
    r.define('getSimpleStreamsImages', {}, async (request, reply) => send(request, reply, await deps.feed.document('images')));
  };
}
