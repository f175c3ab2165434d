import type { CelEvaluator } from '../auth/cel-evaluator.ts';
import { audienceIncludes, ruleClaims, type OidcIdentity, type OidcRule } from '../domain/oidc.ts';
import type { ServiceDeps } from './deps.ts';

export type RuleJudge = ReturnType<typeof createRuleJudge>;

/**
 * Decides whether a rule admits an identity with some claims: those of a token being
 * verified, or those stored on a principal (reconciliation). The same test both times, so
 * what reconciliation removes is exactly what a fresh token would no longer get.
 */
export function createRuleJudge(deps: Pick<ServiceDeps, 'log'> & { cel: CelEvaluator }) {
  const { cel, log } = deps;
  return {
    async admits(rule: OidcRule, identity: OidcIdentity, claims: Record<string, unknown>): Promise<boolean> {
      if (rule.deletedAt || !rule.enabled || rule.issuerUrl !== identity.issuer || !audienceIncludes(claims.aud, rule.audience)) return false;
      const reply = await cel.evaluate({ condition: rule.condition, forwardedClaims: rule.forwardedClaims, claims: ruleClaims(rule, claims), identity });
      if (reply.outcome === 'over_budget') log.warn({ ruleId: rule.id }, 'oidc rule condition stopped: over its evaluation budget');
      if (reply.outcome === 'error') log.info({ ruleId: rule.id, reason: reply.message }, 'oidc rule condition could not be evaluated');
      return reply.outcome === 'true';
    },
  };
}
