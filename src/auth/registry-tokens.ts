import { createHmac, timingSafeEqual } from 'node:crypto';

/** An action on a repository, as Docker token scopes name them. */
export type RegistryAction = 'pull' | 'push' | 'delete';

/** What a registry token allows: per repository, its actions. */
export interface RegistryGrant {
  repository: string;
  actions: RegistryAction[];
}

export interface RegistryTokenClaims {
  /** The principal it was issued to; empty for an anonymous (pull-only) token. */
  principalId: string;
  grants: RegistryGrant[];
  issuedAt: number;
  expiresAt: number;
}

/**
 * The short-lived, scoped bearer tokens of the Docker token flow (`GET /v2/token`). Opaque to
 * clients: `imgsrv.rt.<claims>.<mac>`, the claims base64url JSON, the MAC an HMAC-SHA256 with a
 * secret every instance shares (kept in the metadata store), compared in constant time. They are
 * not JWTs, so they can never be mistaken for an OIDC token (where HMAC is refused).
 */
const PREFIX = 'imgsrv.rt.';

export const isRegistryToken = (token: string): boolean => token.startsWith(PREFIX);

export function signRegistryToken(key: Buffer, claims: RegistryTokenClaims): string {
  const body = Buffer.from(JSON.stringify({ sub: claims.principalId, grants: claims.grants.map((g) => ({ n: g.repository, a: g.actions })), iat: claims.issuedAt, exp: claims.expiresAt })).toString('base64url');
  return `${PREFIX}${body}.${mac(key, body)}`;
}

/** The claims of a genuine token that has not expired at `now` (epoch seconds), or undefined. */
export function verifyRegistryToken(key: Buffer, token: string, now: number): RegistryTokenClaims | undefined {
  if (!isRegistryToken(token)) return undefined;
  const [body, signature] = token.slice(PREFIX.length).split('.');
  if (!body || !signature) return undefined;
  const expected = Buffer.from(mac(key, body));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
  let raw: { sub?: unknown; grants?: unknown; iat?: unknown; exp?: unknown };
  try {
    raw = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as typeof raw;
  } catch {
    return undefined;
  }
  if (typeof raw.sub !== 'string' || typeof raw.exp !== 'number' || typeof raw.iat !== 'number' || !Array.isArray(raw.grants)) return undefined;
  if (raw.exp <= now) return undefined;
  const grants = (raw.grants as { n: string; a: RegistryAction[] }[]).map((g) => ({ repository: g.n, actions: g.a }));
  return { principalId: raw.sub, grants, issuedAt: raw.iat, expiresAt: raw.exp };
}

const mac = (key: Buffer, body: string) => createHmac('sha256', key).update(body).digest('base64url');

/**
 * Scopes as clients ask for them: `repository:NAME:pull,push` (several per parameter, space
 * separated, or several parameters); `*` means every action. Others (`registry:catalog:*`) are
 * ignored, as a registry may.
 */
export function parseScopes(values: readonly string[]): RegistryGrant[] {
  const grants: RegistryGrant[] = [];
  for (const scope of values.flatMap((v) => v.split(' ')).filter(Boolean)) {
    const m = /^repository(?:\([^)]*\))?:(.+):([a-z*,]+)$/.exec(scope);
    if (!m) continue;
    const actions = m[2]!.split(',').flatMap((a): RegistryAction[] => (a === '*' ? ['pull', 'push', 'delete'] : a === 'pull' || a === 'push' || a === 'delete' ? [a] : []));
    grants.push({ repository: m[1]!, actions: [...new Set(actions)] });
  }
  return grants;
}
