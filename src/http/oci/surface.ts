import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RegistryAction } from '../../auth/registry-tokens.ts';
import { isDomainError } from '../../domain/errors.ts';
import type { BlobService } from '../../services/blobs.ts';
import type { RegistryUploads } from '../../services/registry-uploads.ts';
import type { RegistryAccess, RegistryIdentity } from '../../services/registry/access.ts';
import type { RegistryBlobs } from '../../services/registry/blobs.ts';
import type { ManifestService } from '../../services/registry/manifests.ts';
import { parseScopes } from '../../auth/registry-tokens.ts';
import { readCredential } from '../credential.ts';
import type { Surface } from '../server.ts';
import { clientWentAway } from '../v1/scope.ts';
import { authorize, challenge, ChallengeError, identify } from './access.ts';
import { blobRoutes } from './blob-routes.ts';
import { ociErrorOf, sendOciError } from './errors.ts';
import { manifestRoutes } from './manifest-routes.ts';
import { METHODS, parseOciPath, type OciPath } from './paths.ts';

export interface OciSurfaceOptions {
  access: RegistryAccess;
  registry: RegistryBlobs;
  manifests: ManifestService;
  uploads: Pick<RegistryUploads, 'status' | 'append' | 'cancel'>;
  cas: BlobService;
  publicUrl?: string;
}

/** What each endpoint needs of the caller, by method. */
function neededAction(path: OciPath, method: string): RegistryAction | undefined {
  if (path.kind === 'base' || path.kind === 'catalog' || path.kind === 'token') return undefined;
  if (method === 'GET' || method === 'HEAD') return path.kind === 'upload' ? 'push' : 'pull';
  if (method === 'DELETE' && (path.kind === 'blob' || path.kind === 'manifest')) return 'delete';
  return 'push';
}

/**
 * The OCI Distribution 1.1 registry at `/v2` (its own scope: every body a stream, the spec's
 * error envelope, `Docker-Distribution-API-Version` on every answer, Bearer challenges that send
 * clients to `/v2/token`). Repository names contain slashes, so one wildcard route dispatches
 * by the spec's endpoint shapes (`paths.ts`).
 */
export function ociSurface(opts: OciSurfaceOptions): Surface {
  const { access } = opts;
  const blobs = blobRoutes({ registry: opts.registry, uploads: opts.uploads, cas: opts.cas });
  const manifests = manifestRoutes({ manifests: opts.manifests, registry: opts.registry });

  async function token(request: FastifyRequest, reply: FastifyReply) {
    const credential = readCredential(request.headers.authorization);
    const secret = credential?.scheme === 'bearer' ? credential.token : credential && (credential.username || credential.password) ? credential.password : undefined;
    const identity = await access.identify(secret);
    const requested = parseScopes(([] as string[]).concat((request.query as { scope?: string | string[] }).scope ?? []));
    const issued = await access.issue(identity, requested);
    return reply.header('cache-control', 'no-store').send({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt.toISOString() });
  }

  async function dispatch(request: FastifyRequest, reply: FastifyReply) {
    const raw = (request.url.split('?')[0] ?? '').slice('/v2/'.length);
    let rest: string;
    try {
      rest = decodeURIComponent(raw);
    } catch {
      return sendOciError(reply, { status: 400, code: 'NAME_INVALID', message: 'the path is not a valid URL (a malformed %-escape)' });
    }
    const path = parseOciPath(rest);
    if (!path) return sendOciError(reply, { status: 404, code: 'NAME_UNKNOWN', message: `no registry endpoint matches /v2/${rest.slice(0, 200)}` });
    if (!METHODS[path.kind].includes(request.method)) {
      return sendOciError(reply, { status: 405, code: 'UNSUPPORTED', message: `${request.method} is not supported on this endpoint; use ${METHODS[path.kind].join(', ')}` }, { allow: METHODS[path.kind].join(', ') });
    }
    if (path.kind === 'token') return token(request, reply);
    const identity: RegistryIdentity = await identify(access, request);
    if (path.kind === 'base') {
      // Clients learn how to authenticate only here: anonymous callers get the challenge, even when pulls are anonymous.
      if (!identity.principal && !identity.grants) return sendOciError(reply, { status: 401, code: 'UNAUTHORIZED', message: 'authentication required' }, { 'www-authenticate': challenge(request, opts.publicUrl) });
      return reply.header('content-type', 'application/json').send(Buffer.from('{}'));
    }
    if (path.kind === 'catalog') {
      if (!access.allowsCatalog(identity)) return sendOciError(reply, { status: 401, code: 'UNAUTHORIZED', message: 'authentication required' }, { 'www-authenticate': challenge(request, opts.publicUrl) });
      return manifests.catalog({ request, reply });
    }
    const action = neededAction(path, request.method)!;
    authorize(access, identity, path.name, action);
    const c = { request, reply, name: path.name, actor: identity.principal ?? { id: 'anonymous', kind: 'service' as const, displayName: 'anonymous', attributes: {}, roleIds: [], createdAt: new Date(0) } };
    switch (path.kind) {
      case 'uploads':
        return blobs.start(c);
      case 'upload':
        if (request.method === 'PATCH') return blobs.patch(c, path.uploadId);
        if (request.method === 'PUT') return blobs.finish(c, path.uploadId);
        if (request.method === 'DELETE') return blobs.cancel(c, path.uploadId);
        return blobs.status(c, path.uploadId);
      case 'blob':
        return request.method === 'DELETE' ? blobs.remove(c, path.digest) : blobs.read(c, path.digest);
      case 'manifest':
        if (request.method === 'PUT') return manifests.write(c, path.reference);
        if (request.method === 'DELETE') return manifests.remove(c, path.reference);
        return manifests.read(c, path.reference);
      case 'tags':
        return manifests.tags(c);
      case 'referrers':
        return manifests.referrers(c, path.digest);
    }
  }

  return {
    prefix: '/v2',
    frameworkError: (reply, status, code, detail) => sendOciError(reply, { status, code: status === 414 ? 'NAME_INVALID' : 'UNSUPPORTED', message: detail, detail: code }),
    register(scope: FastifyInstance) {
      scope.removeAllContentTypeParsers();
      // Every body stays a stream: blobs are piped to storage, manifests read with their limit.
      scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
      scope.addHook('onRequest', async (_request, reply) => {
        reply.header('docker-distribution-api-version', 'registry/2.0');
      });
      scope.setErrorHandler(async (error: FastifyError, request, reply) => {
        if (isDomainError(error)) {
          const mapped = ociErrorOf(error);
          if (mapped.status === 503) request.log.warn({ err: error.cause ?? error, code: error.code }, 'request failed: dependency unavailable');
          else if (mapped.status >= 500 && mapped.status !== 507) request.log.error({ err: error.cause ?? error, code: error.code }, 'request failed');
          const extra = (error as unknown as { headers?: Record<string, string> }).headers;
          const wwwAuthenticate = error instanceof ChallengeError ? error.header(request, opts.publicUrl) : challenge(request, opts.publicUrl);
          const headers = { ...extra, ...(mapped.status === 401 && { 'www-authenticate': wwwAuthenticate }) };
          return sendOciError(reply, { ...mapped, message: error.detail, detail: error.code }, headers);
        }
        if (clientWentAway(request.raw, error)) {
          request.log.info({ err: error }, 'client went away mid-request');
          return sendOciError(reply, { status: 400, code: 'BLOB_UPLOAD_INVALID', message: 'the request body ended before it was complete' });
        }
        const status = error.statusCode;
        if (typeof status === 'number' && status >= 400 && status < 500) return sendOciError(reply, { status, code: status === 413 ? 'SIZE_INVALID' : 'UNSUPPORTED', message: error.message });
        request.log.error({ err: error }, 'unexpected error');
        return sendOciError(reply, { status: 500, code: 'UNKNOWN', message: `an unexpected error occurred; it was logged with request id ${request.id}` });
      });
      scope.setNotFoundHandler(async (request, reply) =>
        sendOciError(reply, { status: 405, code: 'UNSUPPORTED', message: `${request.method} is not a method of the registry API` }, { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE' }),
      );
      scope.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/*', handler: dispatch });
      scope.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/', handler: dispatch });
    },
  };
}
