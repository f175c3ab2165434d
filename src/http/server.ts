import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { RouteTable } from './route-table.ts';
import { problem, sendProblem } from './v1/problem.ts';

/** Longest path segment routed; longer ones are 414 (digests, ids and names are far shorter). */
export const MAX_PARAM_LENGTH = 512;

/**
 * One HTTP surface in its own encapsulated fastify scope: its parsers, authentication, error
 * envelope and not-found handling, under a URL prefix it owns ('' for root-level paths such
 * as /healthz, whose unknown neighbours the root answers).
 */
export interface Surface {
  prefix: string;
  /** Registers the surface's routes, parsers, hooks and handlers in `scope`. */
  register(scope: FastifyInstance, routes: RouteTable): void;
  /** Answers a failure no route saw (a malformed URL, an over-long segment) in the surface's envelope. */
  frameworkError(reply: FastifyReply, status: number, code: string, detail: string): FastifyReply;
}

export interface HttpServerOptions {
  log: Logger;
  tls?: { cert: string; key: string };
  /** Body limit of every request the surfaces parse (byte bodies are streamed and limited by their routes). */
  maxJsonBytes: number;
  /** The surfaces, registered in this order. */
  surfaces: readonly Surface[];
}

const FRAMEWORK_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_BAD_URL: [400, 'invalid_url', 'the request path is not a valid URL (a malformed %-escape or invalid UTF-8)'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`],
};

/**
 * The root instance: what every surface shares and nothing more. TLS, request ids, answers
 * to requests the HTTP parser or the router reject before any surface sees them, and
 * problem+json for paths outside every surface. Each surface then brings its own scope.
 */
export function createHttpServer(opts: HttpServerOptions): FastifyInstance {
  const surfaceOf = (url: string) => [...opts.surfaces].sort((a, b) => b.prefix.length - a.prefix.length).find((s) => url === s.prefix || url.startsWith(`${s.prefix}/`) || s.prefix === '');
  const app = Fastify({
    loggerInstance: opts.log,
    ...(opts.tls && { https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' as const } }),
    bodyLimit: opts.maxJsonBytes,
    genReqId: () => randomUUID(),
    exposeHeadRoutes: false,
    requestTimeout: 0,
    connectionTimeout: 120_000,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Malformed escapes and over-long path segments never reach a route: answer them in the envelope of the surface the path belongs to.
    frameworkErrors: (error, request, reply) => {
      const known = FRAMEWORK_ERRORS[error.code];
      if (!known) request.log.error({ err: error }, 'unexpected framework error');
      const [status, code, detail] = known ?? [500, 'internal_error', `an unexpected error occurred; it was logged with request id ${request.id}`];
      const surface = surfaceOf(request.raw.url ?? '/');
      return surface ? surface.frameworkError(reply, status, code, detail) : sendProblem(reply, problem(status, code, detail));
    },
    // Requests the HTTP parser rejects (bad Content-Length, oversized headers) get a problem too.
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      if (!socket.writable || err.code === 'ECONNRESET') return socket.destroy();
      const body = JSON.stringify(problem(status, 'malformed_request', `the request could not be parsed (${err.code ?? 'invalid HTTP'})`));
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  }) as unknown as FastifyInstance;

  const routes = new RouteTable();
  app.addHook('onRoute', (r) => routes.add(r.method, r.url));
  // Callback hooks, not async ones: they run on every request, and a promise each would cost.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  // A body we did not read (rejected early) must not be drained: close the connection instead.
  app.addHook('onSend', (request, reply, _payload, done) => {
    if (!request.raw.complete) reply.header('connection', 'close');
    done();
  });

  // Paths outside every prefixed surface (and the root-level ones' unknown neighbours).
  app.setNotFoundHandler(async (request, reply) => routes.notFound(request, reply));
  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    request.log.error({ err: error }, 'unexpected error outside every surface');
    return sendProblem(reply, problem(500, 'internal_error', `an unexpected error occurred; it was logged with request id ${request.id}`));
  });

  for (const surface of opts.surfaces) {
    void app.register(
      async (scope) => {
        surface.register(scope, routes);
      },
      { prefix: surface.prefix },
    );
  }
  return app;
}
