import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../../domain/auth.ts';
import { isDomainError } from '../../domain/errors.ts';
import type { Action } from '../../domain/roles.ts';
import { bearerToken } from '../credential.ts';
import type { RouteTable } from '../route-table.ts';
import type { Surface } from '../server.ts';
import type { Contract } from './contract.ts';
import { parseJsonBody } from './json-body.ts';
import { problem, sendProblem, STATUS_OF_KIND, validationProblem } from './problem.ts';
import { contractRouter, type ContractRouter } from './route.ts';

/** Who the bearer of a token is, and whether they may do something. */
export interface Authenticator {
  authenticate(token: string): Promise<Principal>;
  authorize(principal: Principal, action: Action): void;
}

export interface ContractSurfaceOptions {
  contract: Contract;
  /** The URL prefix the surface owns (`/v1`), or '' for root-level operations (`/healthz`). */
  prefix: string;
  auth: Authenticator;
  /** Resource route files, registered in this order. */
  routes: readonly ((router: ContractRouter) => void)[];
}

/**
 * A surface of operations of the contract (`/v1`, the feed, the root-level meta routes): JSON
 * and raw byte bodies, request validation against the contract, bearer authentication for the
 * secured operations, and RFC 9457 problems for every error, including unknown routes (404),
 * wrong methods (405) and wrong media types (415).
 */
export function contractSurface(opts: ContractSurfaceOptions): Surface {
  const { contract, auth } = opts;
  return {
    prefix: opts.prefix,
    frameworkError: (reply, status, code, detail) => sendProblem(reply, problem(status, code, detail)),
    register(scope: FastifyInstance, routes: RouteTable) {
      scope.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? contract.bodyAjv : contract.paramAjv).compile(schema));
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
        if (body === '') return done(null, undefined);
        try {
          done(null, parseJsonBody(body as string));
        } catch (e) {
          done(e as Error);
        }
      });
      // Byte bodies stay streams: the handler pipes them to storage with backpressure.
      scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

      const guard = async (request: FastifyRequest, reply: FastifyReply) => {
        const { action, bodyMediaType } = request.routeOptions.config;
        if (action) {
          const principal = await auth.authenticate(bearerToken(request.headers.authorization));
          auth.authorize(principal, action);
          request.principal = principal;
        }
        if (bodyMediaType) {
          const given = request.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
          if (given !== bodyMediaType) {
            await sendProblem(reply, problem(415, 'unsupported_media_type', `this operation expects Content-Type: ${bodyMediaType}, not ${given ? `"${given}"` : 'none'}`));
          }
        }
      };
      // Public reads (most requests) pass straight through, without a promise.
      scope.addHook('onRequest', (request, reply, done) => {
        const { action, bodyMediaType } = request.routeOptions.config;
        if (!action && !bodyMediaType) return done();
        // A rejection without a reason still fails the request (never lets the handler run).
        guard(request, reply).then(() => done(), (e: unknown) => done((e as Error | undefined) ?? new Error('the request guard failed without a reason')));
      });

      if (opts.prefix !== '') scope.setNotFoundHandler(async (request, reply) => routes.notFound(request, reply));
      scope.setErrorHandler(async (error: FastifyError, request, reply) => {
        if (isDomainError(error)) {
          const status = STATUS_OF_KIND[error.kind];
          // 503: a dependency (database, disk, OIDC issuer) is down; worth a warning, not a bug report.
          if (status === 503) request.log.warn({ err: error.cause ?? error, code: error.code }, 'request failed: dependency unavailable');
          else if (status >= 500 && status !== 507) request.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
          const headers: Record<string, string> = status === 401 ? { 'www-authenticate': `Bearer realm="imgsrv"${request.headers.authorization ? ', error="invalid_token"' : ''}` } : {};
          return sendProblem(reply, problem(status, error.code, error.detail), headers);
        }
        if (error.validation) return sendProblem(reply, validationProblem(error.validation, error.validationContext ?? 'request'));
        if (clientWentAway(request.raw, error)) {
          request.log.info({ err: error }, 'client went away mid-request');
          return sendProblem(reply, problem(400, 'request_aborted', 'the request body ended before it was complete'));
        }
        const status = error.statusCode;
        if (typeof status === 'number' && status >= 400 && status < 500) {
          const code = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
          return sendProblem(reply, problem(status, code, error.message));
        }
        return internalError(request, reply, error);
      });

      const router = contractRouter(scope, contract, opts.prefix);
      for (const register of opts.routes) register(router);
    },
  };
}

function internalError(request: FastifyRequest, reply: Parameters<typeof sendProblem>[0], error: unknown) {
  request.log.error({ err: error }, 'unexpected error');
  return sendProblem(reply, problem(500, 'internal_error', `an unexpected error occurred; it was logged with request id ${request.id}`));
}

/**
 * Whether an error means the client disconnected before its body was read. Node 20 marks the
 * request destroyed once the body was read in full, so that alone proves nothing: only a body
 * that never completed, or a connection already gone, is a disconnect.
 */
export function clientWentAway(raw: IncomingMessage, error: { code?: string }): boolean {
  if (raw.socket?.destroyed) return true;
  return !raw.complete && (raw.destroyed || error.code === 'ERR_STREAM_PREMATURE_CLOSE' || error.code === 'ECONNRESET' || error.code === 'ECONNABORTED');
}
