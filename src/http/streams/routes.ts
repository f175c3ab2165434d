import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FeedDocument, FeedService } from '../../services/feed.ts';
import { decide } from '../conditional.ts';
import type { Contract } from '../contract.ts';
import { defineRoute } from '../route.ts';

/**
 * `/streams/v1/index.json` and `/streams/v1/images.json`: the Incus Simple Streams feed, public,
 * from a cached snapshot with a strong ETag and Last-Modified (conditional GET → 304).
 */
export function streamsRoutes(deps: { contract: Contract; feed: FeedService }) {
  const send = async (request: FastifyRequest, reply: FastifyReply, doc: FeedDocument) => {
    const headers = { etag: doc.etag, 'last-modified': doc.lastModified.toUTCString(), 'cache-control': 'public, no-cache' };
    const ifNoneMatch = request.headers['if-none-match'];
    const ifModifiedSince = request.headers['if-modified-since'];
    const { status } = decide({ method: 'GET', ifNoneMatch, ifModifiedSince }, { etag: doc.etag, lastModified: doc.lastModified, size: doc.body.length });
    if (status === 304) return reply.code(304).headers(headers).send();
    return reply.headers(headers).type('application/json').send(doc.body);
  };
  return (app: FastifyInstance) => {
    defineRoute(app, deps.contract, 'getSimpleStreamsIndex', {}, async (request, reply) => send(request, reply, await deps.feed.document('index')));
    defineRoute(app, deps.contract, 'getSimpleStreamsImages', {}, async (request, reply) => send(request, reply, await deps.feed.document('images')));
  };
}
