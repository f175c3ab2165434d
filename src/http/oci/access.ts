import type { FastifyRequest } from 'fastify';
import type { RegistryAction } from '../../auth/registry-tokens.ts';
import { DomainError } from '../../domain/errors.ts';
import type { RegistryAccess, RegistryIdentity } from '../../services/registry/access.ts';
import { readCredential } from '../credential.ts';

/** The service name registry tokens are issued for (clients echo it to the token endpoint). */
export const SERVICE = 'imgsrv';

/**
 * Reads who the caller is from `Authorization`: Bearer (a registry token, an imgsrv API token
 * or an OIDC JWT) or Basic (the password is such a token; the user name is not used). No header,
 * and Basic with an empty user and password (what skopeo sends without credentials), are
 * anonymous.
 */
export async function identify(access: RegistryAccess, request: FastifyRequest): Promise<RegistryIdentity> {
  const credential = readCredential(request.headers.authorization);
  if (!credential) return {};
  if (credential.scheme === 'bearer') return access.identify(credential.token);
  if (credential.username === '' && credential.password === '') return {};
  return access.identify(credential.password);
}

/** The realm of the Bearer challenge: this server's token endpoint, absolute, as clients require. */
export function tokenRealm(request: FastifyRequest, publicUrl?: string): string {
  const base = publicUrl ?? `${request.protocol}://${request.headers.host ?? 'localhost'}`;
  return `${base}/v2/token`;
}

/** The `WWW-Authenticate` challenge that sends a client to the token endpoint for `scope`. */
export function challenge(request: FastifyRequest, publicUrl: string | undefined, scope?: { repository: string; actions: RegistryAction[] }, insufficient = false): string {
  const parts = [`realm="${tokenRealm(request, publicUrl)}"`, `service="${SERVICE}"`];
  if (scope) parts.push(`scope="repository:${scope.repository}:${scope.actions.join(',')}"`);
  if (insufficient) parts.push('error="insufficient_scope"');
  return `Bearer ${parts.join(',')}`;
}

/**
 * Refuses a request the identity may not make: 401 with a challenge for the scope when the
 * caller could authenticate (or get a token with more scope), 403 (`DENIED`) when it is
 * authenticated and its roles do not allow the action.
 */
export function authorize(access: RegistryAccess, identity: RegistryIdentity, repository: string, action: RegistryAction): void {
  if (access.allows(identity, repository, action)) return;
  const actions: RegistryAction[] = action === 'pull' ? ['pull'] : ['pull', action];
  if (identity.principal && !identity.grants) {
    throw new DomainError('forbidden', 'denied', `principal ${identity.principal.id} may not ${action} ${repository} (pushing and deleting need the content-writer role)`);
  }
  throw new ChallengeError(`authentication required to ${action} ${repository}`, { repository, actions }, identity.grants !== undefined);
}

/** A 401 with the Bearer challenge for the scope (a registry token's holder asks for more: `insufficient_scope`). */
export class ChallengeError extends DomainError {
  constructor(
    detail: string,
    readonly scope: { repository: string; actions: RegistryAction[] },
    readonly insufficient: boolean,
  ) {
    super('unauthenticated', 'unauthorized', detail);
  }

  header(request: FastifyRequest, publicUrl?: string): string {
    return challenge(request, publicUrl, this.scope, this.insufficient);
  }
}
