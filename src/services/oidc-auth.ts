import { createHash } from 'node:crypto';
import type { OidcVerifier } from '../auth/oidc-verifier.ts';
import type { Principal } from '../domain/auth.ts';
import { DomainError } from '../domain/errors.ts';
import { pickClaims, STANDARD_CLAIMS, type OidcIdentity, type OidcRule } from '../domain/oidc.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { AuditLog } from './audit.ts';
import type { ServiceDeps } from './deps.ts';
import type { RuleJudge } from './oidc-conditions.ts';

export interface OidcAuthDeps extends Pick<ServiceDeps, 'clock' | 'log' | 'newId'> {
  store: Pick<MetadataStore, 'listEnabledOidcRules' | 'provisionOidcPrincipal'>;
  verifier: Pick<OidcVerifier, 'peek' | 'verify'>;
  judge: RuleJudge;
  audit: AuditLog;
}

/**
 * A verified token keeps its principal this long (at most until it expires), sparing the
 * issuer, CEL and the provisioning write, as long as the issuer's enabled rules are the ones
 * it was judged by: a rule saved or deleted through any instance takes effect on the next request.
 */
const CACHE_MS = 60_000;
const CACHE_ENTRIES = 1000;

export type OidcAuthenticator = ReturnType<typeof createOidcAuthenticator>;

/**
 * Workload identity: a CI job presents its OIDC ID token. The token's issuer must be that of
 * an enabled provisioning rule; it is verified (oidc-verifier.ts) for the audiences of those
 * rules; every rule whose audience and condition admit it contributes its roles. The caller
 * becomes the `service` principal of (issuer, subject), created on first use, with the claims
 * of the issuer's rules stored as its attributes so that reconciliation can judge it later.
 * The roles of a request are exactly those of the rules that admit this token.
 */
export function createOidcAuthenticator(deps: OidcAuthDeps) {
  const { store, verifier, judge, clock, audit } = deps;
  const cache = new Map<string, { principal: Principal; until: number; issuer: string; rules: string }>();
  /** Which rules, in which revision, a token was judged by. */
  const signature = (rules: readonly OidcRule[]) => rules.map((r) => `${r.id}@${r.updatedAt.getTime()}`).sort().join(',');

  async function provision(input: Parameters<OidcAuthDeps['store']['provisionOidcPrincipal']>[0]) {
    try {
      return await store.provisionOidcPrincipal(input);
    } catch (e) {
      // Another instance provisioned the same identity at the same moment: it exists now.
      if (e instanceof DomainError && e.kind === 'conflict') return store.provisionOidcPrincipal(input);
      throw e;
    }
  }

  return {
    async authenticate(jwt: string): Promise<Principal> {
      const key = createHash('sha256').update(jwt).digest('base64url');
      const now = clock.now();
      const hit = cache.get(key);
      const { issuer } = verifier.peek(jwt);
      const rules = await store.listEnabledOidcRules(issuer);
      if (hit && hit.until > now.getTime() && hit.issuer === issuer && hit.rules === signature(rules)) return hit.principal;
      cache.delete(key);
      if (rules.length === 0) throw new DomainError('unauthenticated', 'untrusted_issuer', 'the OIDC token has no https issuer that this server trusts');
      const payload = await verifier.verify(jwt, issuer, [...new Set(rules.map((r) => r.audience))]);
      const claims: Record<string, unknown> = payload;
      const identity: OidcIdentity = { issuer, subject: payload.sub };

      const admitting = [];
      for (const rule of rules) if (await judge.admits(rule, identity, claims)) admitting.push(rule);
      if (admitting.length === 0) {
        deps.log.info({ issuer, ruleIds: rules.map((r) => r.id) }, 'oidc token admitted by no rule');
        throw new DomainError('forbidden', 'no_matching_rule', 'no OIDC provisioning rule admits this token');
      }

      const roleIds = [...new Set(admitting.flatMap((r) => r.assignRoleIds))].sort();
      const ruleIds = admitting.map((r) => r.id);
      const { principal, created } = await provision({
        identity,
        newPrincipalId: deps.newId(),
        displayName: `${identity.subject} (${new URL(issuer).host})`,
        claims: pickClaims(claims, [...STANDARD_CLAIMS, ...rules.flatMap((r) => r.forwardedClaims)]),
        ruleIds,
        roleIds,
        now,
      });
      audit({ action: 'oidc.provision', actor: 'oidc', target: principal.id, created, issuer, subject: identity.subject, ruleIds, roleIds });

      const effective = { ...principal, roleIds };
      if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
      cache.set(key, { principal: effective, until: Math.min(payload.exp! * 1000, now.getTime() + CACHE_MS), issuer, rules: signature(rules) });
      return effective;
    },

    /** Drops verified tokens (a rule changed); a change through another instance is seen by the signature check. */
    forget(): void {
      cache.clear();
    },
  };
}
