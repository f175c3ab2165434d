import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { isDomainError } from '../domain/errors.ts';
import type { AuthService } from '../services/auth.ts';
import type { Contract } from './contract.ts';
import { parseJsonBody } from './json-body.ts';
import { problem, sendProblem, STATUS_OF_KIND, validationProblem } from './problem.ts';

/** Longest path segment routed; longer ones are 414 (digests, ids and names are far shorter). */
const MAX_PARAM_LENGTH = 512;

export interface HttpServerOptions {
  log: Logger;
  contract: Contract;
  auth: AuthService;
  tls?: { cert: string; key: string };
  maxJsonBytes: number;
  /** Resource route plugins, registered in this order. */
  routes: readonly ((app: FastifyInstance) => void)[];
}

const FRAMEWORK_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_BAD_URL: [400, 'invalid_url', 'the request path is not a valid URL (a malformed %-escape or invalid UTF-8)'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`],
};

/**
 * Whether an error means the client disconnected before its body was read. Node 20 marks the
 * request destroyed once the body was read in full, so that alone proves nothing: only a body
 * that never completed, or a connection already gone, is a disconnect.
 */
export function clientWentAway(raw: IncomingMessage, error: { code?: string }): boolean {
  if (raw.socket?.destroyed) return true;
  return !raw.complete && (raw.destroyed || error.code === 'ERR_STREAM_PREMATURE_CLOSE' || error.code === 'ECONNRESET' || error.code === 'ECONNABORTED');
}

/**
 * The Fastify instance with the cross-cutting behaviour every route shares: JSON and raw
 * byte bodies, contract validation, bearer authentication, and RFC 9457 problems for every
 * error, including unknown routes (404), wrong methods (405) and wrong media types (415).
 */
export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const { contract, auth } = opts;
  const app = Fastify({
    loggerInstance: opts.log,
    ...(opts.tls && { https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' as const } }),
    bodyLimit: opts.maxJsonBytes,
    genReqId: () => randomUUID(),
    exposeHeadRoutes: false,
    requestTimeout: 0,
    connectionTimeout: 120_000,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Malformed escapes and over-long path segments never reach a route: answer them as problems too.
    frameworkErrors: (error, request, reply) => {
      const known = FRAMEWORK_ERRORS[error.code];
      if (!known) request.log.error({ err: error }, 'unexpected framework error');
      const [status, code, detail] = known ?? [500, 'internal_error', `an unexpected error occurred; it was logged with request id ${request.id}`];
      return sendProblem(reply, problem(status, code, detail));
    },
    // Requests the HTTP parser rejects (bad Content-Length, oversized headers) get a problem too.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy();
      const body = JSON.stringify(problem(status, 'malformed_request', `the request could not be parsed (${err.code ?? 'invalid HTTP'})`));
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? contract.bodyAjv : contract.paramAjv).compile(schema));

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error);
    }
  });
  // Byte bodies stay streams: the handler pipes them to storage with backpressure.
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  const routes: { method: string; pattern: RegExp }[] = [];
  app.addHook('onRoute', (r) => {
    const pattern = new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+')}$`);
    for (const method of [r.method].flat()) routes.push({ method, pattern });
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const { action, bodyMediaType } = request.routeOptions.config;
    if (action) {
      const principal = await auth.authenticate(request.headers.authorization);
      auth.authorize(principal, action);
      request.principal = principal;
    }
    if (bodyMediaType) {
      const given = request.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
      if (given !== bodyMediaType) {
        await sendProblem(reply, problem(415, 'unsupported_media_type', `this operation expects Content-Type: ${bodyMediaType}, not ${given ? `"${given}"` : 'none'}`));
      }
    }
  });

  // A body we did not read (rejected early) must not be drained: close the connection instead.
  app.addHook('onSend', async (request, reply) => {
    if (!request.raw.complete) reply.header('connection', 'close');
  });

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      return sendProblem(reply, problem(405, 'method_not_allowed', `${request.method} is not supported on ${path}; use ${allowed.join(', ')}`), { allow: allowed.join(', ') });
    }
    return sendProblem(reply, problem(404, 'route_not_found', `no route matches ${request.method} ${path}`));
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    if (isDomainError(error)) {
      const status = STATUS_OF_KIND[error.kind];
      // 503: a dependency (database, disk, OIDC issuer) is down; worth a warning, not a bug report.
      if (status === 503) request.log.warn({ err: error.cause ?? error, code: error.code }, 'request failed: dependency unavailable');
      else if (status >= 500) request.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
      const headers: Record<string, string> =
        status === 401 ? { 'www-authenticate': `Bearer realm="imgsrv"${request.headers.authorization ? ', error="invalid_token"' : ''}` } : {};
      return sendProblem(reply, problem(status, error.code, error.detail), headers);
    }
    if (error.validation) return sendProblem(reply, validationProblem(error.validation, error.validationContext ?? 'request'));
    if (clientWentAway(request.raw, error)) {
      request.log.info({ err: error }, 'client went away mid-request');
      return sendProblem(reply, problem(400, 'request_aborted', 'the request body ended before it was complete'));
    }
    const status = error.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const code = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : error.code === 'invalid_json' ? 'invalid_json' : 'bad_request';
      return sendProblem(reply, problem(status, code, error.message));
    }
    request.log.error({ err: error }, 'unexpected error');
    return sendProblem(reply, problem(500, 'internal_error', `an unexpected error occurred; it was logged with request id ${request.id}`));
  });

  for (const register of opts.routes) register(app);
  return app;
}
