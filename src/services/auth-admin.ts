import { generateToken, hashSecret } from '../auth/tokens.ts';
import type { ApiToken, Principal, PrincipalKind } from '../domain/auth.ts';
import { DomainError } from '../domain/errors.ts';
import { isRoleId } from '../domain/roles.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { AuditLog } from './audit.ts';
import type { ServiceDeps } from './deps.ts';

export interface AuthAdminDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  store: Pick<MetadataStore, 'listPrincipals' | 'getPrincipal' | 'insertPrincipal' | 'grantRole' | 'revokeRole' | 'insertApiToken' | 'listApiTokens' | 'revokeApiToken'>;
  audit: AuditLog;
  /** Longest lifetime an issued API token may have. */
  maxTokenLifetimeSeconds: number;
}

export type AuthAdminService = ReturnType<typeof createAuthAdminService>;

/** The role whose last holder may not lose it: without it nobody could manage auth any more. */
export const GUARDED_ROLE = 'auth-manager';

const MAX_NAME_LENGTH = 200;
/** A principal's free-form attributes, serialised (OIDC claims are bounded by the token size). */
const MAX_ATTRIBUTES_BYTES = 16_384;

const tooLong = (field: string, value: string) => {
  if (value.length > MAX_NAME_LENGTH) throw new DomainError('invalid', 'value_too_long', `${field} must be at most ${MAX_NAME_LENGTH} characters`);
};

export function lastHolderError(principalId: string): DomainError {
  return new DomainError('invalid', 'last_auth_manager', `principal ${principalId} is the last holder of ${GUARDED_ROLE}; assign the role to another principal first`);
}

/** Principals, role assignments and API tokens, as managed by an `auth-manager`. Every change is audited. */
export function createAuthAdminService(deps: AuthAdminDeps) {
  const { store, clock, audit } = deps;

  async function principal(id: string): Promise<Principal> {
    const p = await store.getPrincipal(id);
    if (!p) throw new DomainError('not_found', 'principal_not_found', `no principal has id ${id}`);
    return p;
  }

  const role = (roleId: string) => {
    if (!isRoleId(roleId)) throw new DomainError('invalid', 'unknown_role', `${roleId} is not a role`);
    return roleId;
  };

  return {
    listPrincipals: () => store.listPrincipals(),
    getPrincipal: principal,

    async createPrincipal(actor: Principal, input: { kind: PrincipalKind; displayName: string; attributes?: Record<string, unknown> }): Promise<Principal> {
      tooLong('display_name', input.displayName);
      const attributesBytes = Buffer.byteLength(JSON.stringify(input.attributes ?? {}));
      if (attributesBytes > MAX_ATTRIBUTES_BYTES) {
        throw new DomainError('invalid', 'value_too_long', `attributes must be at most ${MAX_ATTRIBUTES_BYTES} bytes as JSON, not ${attributesBytes}`);
      }
      const id = deps.newId();
      await store.insertPrincipal({ id, kind: input.kind, displayName: input.displayName, attributes: input.attributes ?? {}, now: clock.now() });
      audit({ action: 'principal.create', actor: actor.id, target: id, kind: input.kind });
      return principal(id);
    },

    /** Idempotent. */
    async assignRole(actor: Principal, principalId: string, roleId: string): Promise<void> {
      await principal(principalId);
      await store.grantRole({ principalId, roleId: role(roleId), now: clock.now() });
      audit({ action: 'principal.role.assign', actor: actor.id, target: principalId, roleId });
    },

    /** Idempotent; refuses to take `auth-manager` from its last holder. */
    async unassignRole(actor: Principal, principalId: string, roleId: string): Promise<void> {
      await principal(principalId);
      const removal = await store.revokeRole({ principalId, roleId: role(roleId), guardRoleId: GUARDED_ROLE, now: clock.now() });
      if (removal === 'last_holder') throw lastHolderError(principalId);
      if (removal === 'removed') audit({ action: 'principal.role.unassign', actor: actor.id, target: principalId, roleId });
    },

    async listTokens(principalId: string): Promise<ApiToken[]> {
      await principal(principalId);
      return store.listApiTokens(principalId);
    },

    /** Issues a token; its plaintext is returned here and never again (only a hash is stored). */
    async issueToken(actor: Principal, principalId: string, input: { name?: string; expiresAt: Date }): Promise<{ token: ApiToken; plaintext: string }> {
      const name = input.name ?? '';
      tooLong('name', name);
      const now = clock.now();
      const max = new Date(now.getTime() + deps.maxTokenLifetimeSeconds * 1000);
      if (!(input.expiresAt > now)) throw new DomainError('invalid', 'expiry_in_past', 'expires_at must be in the future');
      if (input.expiresAt > max) {
        throw new DomainError('invalid', 'expiry_too_late', `expires_at must be at most ${deps.maxTokenLifetimeSeconds} seconds from now (before ${max.toISOString()})`);
      }
      await principal(principalId);
      const { id, secret, plaintext } = generateToken();
      const token: ApiToken = { id, principalId, name, secretHash: hashSecret(secret), expiresAt: input.expiresAt, createdAt: now };
      await store.insertApiToken(token);
      audit({ action: 'api_token.issue', actor: actor.id, target: id, principalId, name, expiresAt: input.expiresAt.toISOString() });
      return { token, plaintext };
    },

    /** Idempotent: revoking a revoked token keeps its first revocation time. */
    async revokeToken(actor: Principal, tokenId: string): Promise<void> {
      const token = await store.revokeApiToken({ id: tokenId, now: clock.now() });
      if (!token) throw new DomainError('not_found', 'api_token_not_found', `no API token has id ${tokenId}`);
      audit({ action: 'api_token.revoke', actor: actor.id, target: tokenId, principalId: token.principalId });
    },
  };
}
