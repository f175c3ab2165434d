import { generateToken, hashSecret, MAX_BEARER_LENGTH, secretMatches, tokenParts } from '../auth/tokens.ts';
import type { Principal } from '../domain/auth.ts';
import { DomainError } from '../domain/errors.ts';
import { rolesGrant, type Action } from '../domain/roles.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { ServiceDeps } from './deps.ts';
import type { OidcAuthenticator } from './oidc-auth.ts';

export interface AuthServiceDeps extends Pick<ServiceDeps, 'clock' | 'log'> {
  store: Pick<MetadataStore, 'getApiToken' | 'getPrincipal' | 'bootstrapPrincipal' | 'renewExpiredApiToken' | 'touchApiToken'>;
  oidc: Pick<OidcAuthenticator, 'authenticate'>;
}

export type AuthService = ReturnType<typeof createAuthService>;

const BOOTSTRAP_PRINCIPAL_ID = 'admin';

const unauthenticated = (code: string, detail: string) => new DomainError('unauthenticated', code, detail);

/** Three dot-separated base64url parts (the signature may be empty): a JWT, verified as an OIDC token. */
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** `last_used_at` is written at most once per this interval per token, not on every request. */
const LAST_USED_RESOLUTION_MS = 60_000;

/** Bearer-token authentication and role-based authorization. */
export function createAuthService(deps: AuthServiceDeps) {
  const { store, clock } = deps;
  return {
    /**
     * Resolves a bearer token (as the HTTP layer read it from a request) to its principal: an
     * OIDC JWT is verified against the provisioning rules, anything else is an imgsrv API token.
     * @throws unauthenticated
     */
    async authenticate(bearer: string): Promise<Principal> {
      if (bearer.length > MAX_BEARER_LENGTH) throw unauthenticated('malformed_authorization', `the bearer token must be at most ${MAX_BEARER_LENGTH} characters`);
      if (JWT.test(bearer)) return deps.oidc.authenticate(bearer);
      const { id, secret } = tokenParts(bearer);
      const token = await store.getApiToken(id);
      if (!token || !secretMatches(secret, token.secretHash)) throw unauthenticated('invalid_token', 'the bearer token is not valid');
      if (token.revokedAt) throw unauthenticated('token_revoked', 'the bearer token has been revoked');
      const now = clock.now();
      if (token.expiresAt.getTime() <= now.getTime()) throw unauthenticated('token_expired', 'the bearer token has expired');
      const principal = await store.getPrincipal(token.principalId);
      if (!principal) throw unauthenticated('invalid_token', 'the bearer token is not valid');
      const staleBefore = new Date(now.getTime() - LAST_USED_RESOLUTION_MS);
      if (!token.lastUsedAt || token.lastUsedAt < staleBefore) {
        // Bookkeeping must not fail the request it describes.
        store.touchApiToken({ id, now, staleBefore }).catch((e: unknown) => deps.log.warn({ err: e, tokenId: id }, 'could not record api token use'));
      }
      return principal;
    },

    /** Throws `forbidden` unless one of the principal's roles grants `action`. */
    authorize(principal: Principal, action: Action): void {
      if (!rolesGrant(principal.roleIds, action)) {
        throw new DomainError('forbidden', 'missing_role', `principal ${principal.id} holds no role that allows ${action}`);
      }
    },

    /**
     * When no principal holds `auth-manager`, creates principal `admin` with both roles and an
     * API token: `token` when given (IMGSRV_BOOTSTRAP_TOKEN), otherwise a random one. Returns
     * the plaintext only when it created a random token, for printing once. Starting again with
     * the same IMGSRV_BOOTSTRAP_TOKEN after that token expired renews it (never a revoked one),
     * so an operator with access to the server's environment cannot be locked out.
     */
    async bootstrap(input: { token?: string; ttlSeconds: number }): Promise<{ created: boolean; renewed: boolean; plaintext?: string }> {
      const now = clock.now();
      const generated = input.token === undefined ? generateToken() : undefined;
      const plaintext = input.token ?? generated!.plaintext;
      const { id, secret } = tokenParts(plaintext);
      const expiresAt = new Date(now.getTime() + input.ttlSeconds * 1000);
      const created = await store
        .bootstrapPrincipal({
          principal: { id: BOOTSTRAP_PRINCIPAL_ID, kind: 'user', displayName: 'admin', attributes: { bootstrap: true } },
          roleIds: ['auth-manager', 'content-writer'],
          guardRoleId: 'auth-manager',
          token: { id, principalId: BOOTSTRAP_PRINCIPAL_ID, name: 'bootstrap', secretHash: hashSecret(secret), expiresAt, createdAt: now },
          now,
        })
        .catch((e: unknown) => {
          // Another instance bootstrapped the same token at the same moment.
          if (e instanceof DomainError && e.kind === 'conflict') return false;
          throw e;
        });
      if (created) deps.log.info({ principalId: BOOTSTRAP_PRINCIPAL_ID }, 'bootstrap admin created');
      const renewed = !created && input.token !== undefined && (await store.renewExpiredApiToken({ id, secretHash: hashSecret(secret), expiresAt, now }));
      if (renewed) deps.log.warn({ principalId: BOOTSTRAP_PRINCIPAL_ID }, 'expired bootstrap token renewed from IMGSRV_BOOTSTRAP_TOKEN');
      return { created, renewed, plaintext: created && generated ? plaintext : undefined };
    },
  };
}
