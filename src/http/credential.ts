import { MAX_BEARER_LENGTH } from '../auth/tokens.ts';
import { DomainError } from '../domain/errors.ts';

/**
 * What an `Authorization` header carries, parsed once at the HTTP boundary; services only ever
 * see the token. `Bearer <token>` everywhere; `Basic` (whose password is an imgsrv token) only
 * where a surface accepts it (the registry, for docker/podman/oras logins).
 */
export type Credential = { scheme: 'bearer'; token: string } | { scheme: 'basic'; username: string; password: string };

const unauthenticated = (code: string, detail: string) => new DomainError('unauthenticated', code, detail);

/** Undefined without a header. @throws unauthenticated (`malformed_authorization`) for anything else that is not one of the two schemes. */
export function readCredential(header: string | undefined): Credential | undefined {
  if (header === undefined) return undefined;
  if (header.length > MAX_BEARER_LENGTH + 16) throw unauthenticated('malformed_authorization', `the Authorization header must be "Bearer <token>" with a token of at most ${MAX_BEARER_LENGTH} characters`);
  const bearer = /^Bearer +(\S+)\s*$/i.exec(header);
  if (bearer) return { scheme: 'bearer', token: bearer[1]! };
  const basic = /^Basic +([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) return { scheme: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  throw unauthenticated('malformed_authorization', 'the Authorization header must be "Bearer <token>"');
}

/** The bearer token of a request that must carry one. @throws unauthenticated */
export function bearerToken(header: string | undefined): string {
  const credential = readCredential(header);
  if (!credential) throw unauthenticated('missing_token', 'this operation needs an Authorization: Bearer <token> header');
  if (credential.scheme !== 'bearer') throw unauthenticated('malformed_authorization', 'the Authorization header must be "Bearer <token>"');
  return credential.token;
}
