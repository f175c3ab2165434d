import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash } from 'node:crypto';
import { etagListMatches } from '../conditional.ts';

interface Serialised {
  body: string;
  etag: string;
}

/**
 * Sends catalog values as JSON with a strong ETag (`304` on a matching If-None-Match),
 * serialised once per value: the catalog's cached reads return the same object until the
 * catalog revision moves, so a read of unchanged state costs no serialisation and no hashing.
 * A value that is not cached (a draft) is serialised afresh each time, as it must be.
 */
export function jsonRepresentation<T extends object>(toDto: (value: T) => unknown) {
  const serialised = new WeakMap<T, Serialised>();
  return (request: FastifyRequest, reply: FastifyReply, value: T) => {
    let s = serialised.get(value);
    if (!s) {
      const body = JSON.stringify(toDto(value));
      s = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      serialised.set(value, s);
    }
    reply.header('etag', s.etag).header('cache-control', 'no-cache');
    const ifNoneMatch = request.headers['if-none-match'];
    if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, s.etag)) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(s.body);
  };
}
