import type { ApiToken, Principal } from '../../domain/auth.ts';
import type { OidcRule } from '../../domain/oidc.ts';
import type { Role } from '../../domain/roles.ts';
import type { Reconciliation } from '../../services/oidc-rules.ts';

/** Auth domain objects → contract schemas. A token's secret hash never leaves the server. */
const iso = (d: Date | undefined) => d?.toISOString();

export const roleDto = (r: Role) => ({ id: r.id, display_name: r.displayName, description: r.description, actions: [...r.actions] });

export const principalDto = (p: Principal) => ({ id: p.id, kind: p.kind, display_name: p.displayName, attributes: p.attributes, role_ids: p.roleIds });

export const tokenDto = (t: ApiToken, plaintext?: string) => ({
  id: t.id,
  principal_id: t.principalId,
  name: t.name,
  expires_at: iso(t.expiresAt),
  last_used_at: iso(t.lastUsedAt),
  revoked_at: iso(t.revokedAt),
  plaintext,
});

export const ruleDto = (r: OidcRule) => ({
  id: r.id,
  display_name: r.displayName,
  issuer_url: r.issuerUrl,
  audience: r.audience,
  forwarded_claims: r.forwardedClaims,
  condition: r.condition,
  assign_role_ids: r.assignRoleIds,
  enabled: r.enabled,
});

export const reconciliationDto = (r: Reconciliation) => ({ rule_id: r.ruleId, unassign_role_ids: r.unassignRoleIds, principals: r.principals.map(principalDto), applied: r.applied });
