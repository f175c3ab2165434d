import { randomBytes } from 'node:crypto';
import { isRegistryToken, signRegistryToken, verifyRegistryToken, type RegistryAction, type RegistryGrant } from '../../auth/registry-tokens.ts';
import type { Principal } from '../../domain/auth.ts';
import { DomainError } from '../../domain/errors.ts';
import { rolesGrant } from '../../domain/roles.ts';
import type { MetadataStore } from '../../store/metadata-store.ts';
import type { AuthService } from '../auth.ts';
import type { ServiceDeps } from '../deps.ts';

/** Who is asking: a principal (by an imgsrv API token or an OIDC JWT), a registry token's holder, or nobody. */
export interface RegistryIdentity {
  principal?: Principal;
  /** Set for a registry token: exactly what it allows. */
  grants?: RegistryGrant[];
}

export interface RegistryAccessDeps extends Pick<ServiceDeps, 'clock'> {
  auth: Pick<AuthService, 'authenticate'>;
  store: Pick<MetadataStore, 'serverSecret' | 'getPrincipal'>;
  /** Pulls without credentials (IMGSRV_OCI_ANONYMOUS_PULL). */
  anonymousPull: boolean;
  tokenTtlSeconds: number;
}

export type RegistryAccess = ReturnType<typeof createRegistryAccess>;

const TOKEN_KEY = 'registry-token-hmac';

/**
 * Who may do what in the registry. Pulls: anyone when anonymous pull is on, else any
 * authenticated principal. Pushes and deletes: principals whose roles grant `registry.write`
 * (content-writer). A registry token allows what it was issued for, no more; it is issued for
 * the subset of the requested scopes its bearer may have, as the Docker token protocol says.
 */
export function createRegistryAccess(deps: RegistryAccessDeps) {
  let key: Promise<Buffer> | undefined;
  const tokenKey = () => (key ??= deps.store.serverSecret(TOKEN_KEY, () => randomBytes(32).toString('hex'), deps.clock.now()).then((hex) => Buffer.from(hex, 'hex')));
  const seconds = () => Math.floor(deps.clock.now().getTime() / 1000);

  const may = (identity: RegistryIdentity, action: RegistryAction): boolean =>
    action === 'pull' ? deps.anonymousPull || identity.principal !== undefined : identity.principal !== undefined && rolesGrant(identity.principal.roleIds, 'registry.write');

  return {
    /**
     * The identity behind a bearer token or a Basic password (`undefined` for none).
     * @throws unauthenticated for a token that is not valid (expired, revoked, forged).
     */
    async identify(secret: string | undefined): Promise<RegistryIdentity> {
      if (secret === undefined) return {};
      if (isRegistryToken(secret)) {
        const claims = verifyRegistryToken(await tokenKey(), secret, seconds());
        if (!claims) throw new DomainError('unauthenticated', 'invalid_token', 'the registry token is not valid or has expired; get a new one');
        const principal = claims.principalId ? await deps.store.getPrincipal(claims.principalId) : undefined;
        return { principal, grants: claims.grants };
      }
      return { principal: await deps.auth.authenticate(secret) };
    },

    /** Whether the identity may do `action` on `repository`. */
    allows(identity: RegistryIdentity, repository: string, action: RegistryAction): boolean {
      if (identity.grants) return identity.grants.some((g) => g.repository === repository && g.actions.includes(action));
      return may(identity, action);
    },

    /** Whether the identity may read the catalog of repositories. */
    allowsCatalog: (identity: RegistryIdentity) => identity.grants !== undefined || may(identity, 'pull'),

    /** A token for the requested scopes, narrowed to what the identity may do. */
    async issue(identity: RegistryIdentity, requested: readonly RegistryGrant[]): Promise<{ token: string; expiresIn: number; issuedAt: Date; grants: RegistryGrant[] }> {
      const grants = requested.map((g) => ({ repository: g.repository, actions: g.actions.filter((a) => may(identity, a)) })).filter((g) => g.actions.length > 0);
      const issuedAt = seconds();
      const token = signRegistryToken(await tokenKey(), { principalId: identity.principal?.id ?? '', grants, issuedAt, expiresAt: issuedAt + deps.tokenTtlSeconds });
      return { token, expiresIn: deps.tokenTtlSeconds, issuedAt: new Date(issuedAt * 1000), grants };
    },
  };
}
