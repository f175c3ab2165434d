import type { Principal } from './auth.ts';

/**
 * OIDC provisioning rules: which CI job identities (issuer, audience, claims) become service
 * principals, and with which roles. The condition is CEL over `claims` (only the rule's
 * forwarded claims plus iss, sub and aud, so it can be re-evaluated from what is stored) and
 * `identity` (the token's issuer and subject).
 */
export interface OidcRule {
  id: string;
  displayName: string;
  issuerUrl: string;
  audience: string;
  forwardedClaims: string[];
  condition: string;
  assignRoleIds: string[];
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** Set once the rule is deleted: the row stays so that reconciliation can find what it granted. */
  deletedAt?: Date;
}

/** Claims every condition may use besides the forwarded ones. */
export const STANDARD_CLAIMS = ['iss', 'sub', 'aud'] as const;

/** A forwarded claim must be addressable as `claims.<name>` in CEL. */
export const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The issuer and subject a provisioned principal was created for. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
}

/** A principal that some rule granted roles to, with every rule that did. */
export interface OidcGrantee {
  principal: Principal;
  identity: OidcIdentity;
  ruleIds: string[];
}

/** The claims a rule's condition sees: its forwarded claims and the standard ones, when present. */
export function ruleClaims(rule: Pick<OidcRule, 'forwardedClaims'>, claims: Record<string, unknown>): Record<string, unknown> {
  return pickClaims(claims, [...STANDARD_CLAIMS, ...rule.forwardedClaims]);
}

export function pickClaims(claims: Record<string, unknown>, names: Iterable<string>): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const name of names) if (Object.hasOwn(claims, name)) picked[name] = claims[name];
  return picked;
}

/** RFC 7519 §4.1.3: `aud` is one string or an array of strings. */
export const audienceIncludes = (aud: unknown, audience: string): boolean => aud === audience || (Array.isArray(aud) && aud.includes(audience));
