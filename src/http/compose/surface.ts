import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../../domain/auth.ts';
import { COMPOSE_ERRORS, catalogueError, type Compose } from '../../domain/compose.ts';
import { DomainError, isDomainError } from '../../domain/errors.ts';
import type { Action } from '../../domain/roles.ts';
import type { ComposeService } from '../../services/compose.ts';
import { bearerToken } from '../credential.ts';
import type { RouteTable } from '../route-table.ts';
import type { Surface } from '../server.ts';
import { parseJsonBody } from '../v1/json-body.ts';
import { clientWentAway, type Authenticator } from '../v1/scope.ts';
import { composeLogsDto, composeManifestsDto, composeMetadataDto, composeStatusDto } from './dto.ts';
import { COMPOSE_PREFIX, composeErrorOf, errorBody, sendComposeError } from './errors.ts';

export interface ComposeSurfaceOptions {
  composes: ComposeService;
  auth: Authenticator;
  /** The served document (`GET /openapi`), already parsed. */
  openapi: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Lines per JSON answer of `/logs`, and per read while following. */
const LOG_PAGE = 10_000;
const FOLLOW_POLL_MS = 1000;

const invalid = (detail: string) => new DomainError('invalid', 'invalid_request', detail);
const isFinal = (c: Compose) => c.state === 'success' || c.state === 'failure';

function composeId(request: FastifyRequest): string {
  const { id } = request.params as { id: string };
  if (!UUID.test(id)) throw invalid(`compose id ${JSON.stringify(id.slice(0, 64))} is not a UUID`);
  return id.toLowerCase();
}

/** A query parameter that must be a whole number in [min, max] (default when absent). */
function wholeNumber(request: FastifyRequest, name: string, fallback: number, min: number, max: number): number {
  const raw = (request.query as Record<string, unknown>)[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw) || Number(raw) < min || Number(raw) > max) throw invalid(`${name} must be a whole number from ${min} to ${max}`);
  return Number(raw);
}

/**
 * The compose API at `/api/image-builder-composer/v2`, in osbuild-composer's cloud API shape:
 * JSON bodies only, the seed's Error object for every failure (never problem+json), bearer
 * tokens of principals allowed `compose.build` (content-writer).
 */
export function composeSurface(opts: ComposeSurfaceOptions): Surface {
  const { composes, auth } = opts;

  async function principal(request: FastifyRequest, action?: Action): Promise<Principal> {
    const found = await auth.authenticate(bearerToken(request.headers.authorization));
    if (action) auth.authorize(found, action);
    return found;
  }

  /** The log as text, streamed until the compose has finished and its last line was sent. */
  function follow(id: string, from: number): Readable {
    return Readable.from(
      (async function* () {
        for (let after = from; ; ) {
          const compose = await composes.get(id);
          const lines = await composes.logs(id, after, LOG_PAGE);
          if (lines.length > 0) {
            after = lines.at(-1)!.seq;
            yield `${lines.map((l) => l.line).join('\n')}\n`;
            continue;
          }
          // The worker writes its last lines before it moves the compose to its final state.
          if (isFinal(compose)) return;
          await sleep(FOLLOW_POLL_MS);
        }
      })(),
    );
  }

  async function logs(request: FastifyRequest, reply: FastifyReply) {
    await principal(request, 'compose.build');
    const id = composeId(request);
    const after = wholeNumber(request, 'after', 0, 0, Number.MAX_SAFE_INTEGER);
    const { follow: followParam } = request.query as { follow?: unknown };
    if (followParam !== undefined && followParam !== 'true' && followParam !== 'false') throw invalid('follow must be true or false');
    const accept = request.headers.accept ?? '';
    const asText = followParam === 'true' || (followParam === undefined && /\btext\/plain\b/.test(accept) && !/\bapplication\/json\b/.test(accept));
    const compose = await composes.get(id);
    if (asText) {
      if (request.method === 'HEAD') return reply.type('text/plain; charset=utf-8').send('');
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(follow(id, after));
    }
    const lines = await composes.logs(id, after, LOG_PAGE);
    return reply.header('cache-control', 'no-store').send(composeLogsDto(compose, lines, after, isFinal(compose) && lines.length < LOG_PAGE));
  }

  function errorList(request: FastifyRequest) {
    const page = wholeNumber(request, 'page', 0, 0, 1_000_000);
    const size = wholeNumber(request, 'size', 100, 1, 100);
    const items = COMPOSE_ERRORS.slice(page * size, (page + 1) * size).map((e) => errorBody(e, request.id));
    return { kind: 'ErrorList', page, size: items.length, total: COMPOSE_ERRORS.length, items };
  }

  function oneError(request: FastifyRequest) {
    const { id } = request.params as { id: string };
    const entry = /^\d{1,6}$/.test(id) ? COMPOSE_ERRORS.find((e) => e.id === Number(id)) : undefined;
    if (!entry) throw new DomainError('not_found', 'error_not_found', `the catalogue has no error ${JSON.stringify(id.slice(0, 64))}; GET /errors lists them`);
    return errorBody(entry, request.id);
  }

  return {
    prefix: COMPOSE_PREFIX,
    frameworkError: (reply, status, _code, detail) => sendComposeError(reply.request, reply, status, catalogueError('invalid_request'), detail),
    register(scope: FastifyInstance, routes: RouteTable) {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
        try {
          done(null, body === '' ? undefined : parseJsonBody(body as string));
        } catch (e) {
          done(e as Error);
        }
      });
      scope.addHook('onRequest', async (_request, reply) => {
        reply.header('cache-control', 'no-store');
      });
      scope.setErrorHandler(async (error: FastifyError, request, reply) => {
        if (isDomainError(error)) {
          const { status, entry } = composeErrorOf(error);
          if (status === 503) request.log.warn({ err: error.cause ?? error, code: error.code }, 'request failed: dependency unavailable');
          else if (status >= 500) request.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
          const headers: Record<string, string> = status === 401 ? { 'www-authenticate': `Bearer realm="imgsrv"${request.headers.authorization ? ', error="invalid_token"' : ''}` } : {};
          return sendComposeError(request, reply, status, entry, error.detail, headers);
        }
        if (clientWentAway(request.raw, error)) {
          request.log.info({ err: error }, 'client went away mid-request');
          return sendComposeError(request, reply, 400, catalogueError('invalid_request'), 'the request body ended before it was complete');
        }
        const status = error.statusCode;
        if (typeof status === 'number' && status >= 400 && status < 500) {
          const entry = catalogueError(status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request');
          return sendComposeError(request, reply, status, entry, error.message);
        }
        request.log.error({ err: error }, 'unexpected error');
        return sendComposeError(request, reply, 500, catalogueError('internal'), `logged with request id ${request.id}`);
      });
      scope.setNotFoundHandler(async (request, reply) => {
        const path = request.url.split('?')[0]!;
        const allowed = routes.allowed(path);
        if (allowed.length > 0) return sendComposeError(request, reply, 405, catalogueError('method_not_allowed'), `${request.method} ${path}; use ${allowed.join(', ')}`, { allow: allowed.join(', ') });
        return sendComposeError(request, reply, 404, catalogueError('route_not_found'), `${request.method} ${path}`);
      });

      // HEAD wherever GET, as on every surface.
      const get = (url: string, handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>) => scope.route({ method: ['GET', 'HEAD'], url, handler });
      get('/openapi', async (request) => {
        await principal(request);
        return opts.openapi;
      });
      scope.post('/compose', async (request, reply) => {
        const actor = await principal(request, 'compose.build');
        if (request.body === undefined) throw invalid('the request needs a JSON body (a ComposeRequest)');
        const compose = await composes.submit(actor, request.body);
        return reply.code(201).header('location', `${COMPOSE_PREFIX}/composes/${compose.id}`).send({ id: compose.id, kind: 'ComposeId', href: `${COMPOSE_PREFIX}/composes/${compose.id}` });
      });
      get('/composes/:id', async (request) => {
        await principal(request, 'compose.build');
        return composeStatusDto(await composes.get(composeId(request)));
      });
      scope.delete('/composes/:id', async (request) => {
        const actor = await principal(request, 'compose.build');
        return composeStatusDto(await composes.cancel(actor, composeId(request)));
      });
      get('/composes/:id/metadata', async (request) => {
        await principal(request, 'compose.build');
        return composeMetadataDto(await composes.metadata(composeId(request)));
      });
      get('/composes/:id/manifests', async (request) => {
        await principal(request, 'compose.build');
        return composeManifestsDto(await composes.get(composeId(request)));
      });
      get('/composes/:id/logs', logs);
      get('/errors', async (request) => {
        await principal(request, 'compose.build');
        return errorList(request);
      });
      get('/errors/:id', async (request) => {
        await principal(request, 'compose.build');
        return oneError(request);
      });
    },
  };
}
