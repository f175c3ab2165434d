import { checkCondition } from '../auth/cel.ts';
import type { Principal } from '../domain/auth.ts';
import { DomainError } from '../domain/errors.ts';
import { CLAIM_NAME, STANDARD_CLAIMS, type OidcGrantee, type OidcRule } from '../domain/oidc.ts';
import { isRoleId } from '../domain/roles.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { AuditLog } from './audit.ts';
import { GUARDED_ROLE, lastHolderError } from './auth-admin.ts';
import type { ServiceDeps } from './deps.ts';
import type { RuleJudge } from './oidc-conditions.ts';

export interface OidcRuleDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  store: Pick<
    MetadataStore,
    'listOidcRules' | 'getOidcRule' | 'insertOidcRule' | 'updateOidcRule' | 'deleteOidcRule' | 'listOidcGrantees' | 'revokeOidcGrant' | 'getPrincipal' | 'listPrincipalsWithRole'
  >;
  judge: RuleJudge;
  audit: AuditLog;
  /** Called after every rule change (the OIDC authenticator forgets the tokens it verified). */
  onRulesChanged: () => void;
}

export interface SaveRuleInput {
  id?: string;
  displayName: string;
  issuerUrl: string;
  audience: string;
  forwardedClaims?: string[];
  condition: string;
  enabled?: boolean;
  assignRoleIds?: string[];
}

export interface Reconciliation {
  ruleId: string;
  unassignRoleIds: string[];
  principals: Principal[];
  applied: boolean;
}

export type OidcRuleService = ReturnType<typeof createOidcRuleService>;

const RULE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const MAX_FORWARDED_CLAIMS = 32;
const DEFAULT_ROLES = ['content-writer'];

const invalid = (code: string, detail: string) => new DomainError('invalid', code, detail);

/** Validates a save request into the fields of a rule; the condition is type-checked against its forwarded claims. */
function ruleFields(input: SaveRuleInput) {
  let issuer: URL | undefined;
  try {
    issuer = new URL(input.issuerUrl);
  } catch {
    // reported below
  }
  if (issuer?.protocol !== 'https:' || issuer.search || issuer.hash || issuer.username || issuer.password) {
    throw invalid('invalid_issuer_url', 'issuer_url must be an https URL without credentials, query or fragment, exactly as the tokens\' "iss" claim');
  }
  if (input.displayName.length > 200) throw invalid('value_too_long', 'display_name must be at most 200 characters');
  const forwardedClaims = input.forwardedClaims ?? [];
  const bad = forwardedClaims.find((c) => !CLAIM_NAME.test(c) || (STANDARD_CLAIMS as readonly string[]).includes(c));
  if (bad !== undefined) {
    throw invalid('invalid_forwarded_claim', `forwarded claim ${JSON.stringify(bad)} must be an identifier (letters, digits, _) and not iss, sub or aud, which every condition sees`);
  }
  if (new Set(forwardedClaims).size !== forwardedClaims.length) throw invalid('invalid_forwarded_claim', 'forwarded_claims must not repeat a claim');
  if (forwardedClaims.length > MAX_FORWARDED_CLAIMS) throw invalid('invalid_forwarded_claim', `at most ${MAX_FORWARDED_CLAIMS} claims can be forwarded`);
  const assignRoleIds = input.assignRoleIds ?? DEFAULT_ROLES;
  if (assignRoleIds.length === 0 || !assignRoleIds.every(isRoleId)) throw invalid('invalid_roles', 'assign_role_ids must name at least one role');
  const checked = checkCondition(input.condition, forwardedClaims);
  if (!checked.ok) throw invalid('invalid_condition', `condition: ${checked.message}`);
  return {
    displayName: input.displayName,
    issuerUrl: input.issuerUrl,
    audience: input.audience,
    forwardedClaims,
    condition: input.condition,
    assignRoleIds: [...new Set(assignRoleIds)],
    enabled: input.enabled ?? true,
  };
}

/**
 * OIDC provisioning rules and their reconciliation. Deleted rules stay as tombstones, so that
 * the roles they granted can still be found and taken back.
 */
export function createOidcRuleService(deps: OidcRuleDeps) {
  const { store, clock, audit, judge } = deps;

  async function rule(id: string): Promise<OidcRule> {
    const r = await store.getOidcRule(id);
    if (!r || r.deletedAt) throw new DomainError('not_found', 'oidc_rule_not_found', `no OIDC provisioning rule has id ${id}`);
    return r;
  }

  /** The roles a stale grantee loses: the rule's, minus those its other, still admitting rules give it. */
  async function rolesLost(target: OidcRule, grantee: OidcGrantee, rules: Map<string, OidcRule | undefined>): Promise<string[]> {
    const kept = new Set<string>();
    for (const id of grantee.ruleIds) {
      if (id === target.id) continue;
      if (!rules.has(id)) rules.set(id, await store.getOidcRule(id));
      const other = rules.get(id);
      if (other && (await judge.admits(other, grantee.identity, grantee.principal.attributes))) other.assignRoleIds.forEach((r) => kept.add(r));
    }
    return target.assignRoleIds.filter((r) => !kept.has(r) && grantee.principal.roleIds.includes(r));
  }

  return {
    list: () => store.listOidcRules(),
    get: rule,

    async create(actor: Principal, input: SaveRuleInput): Promise<OidcRule> {
      if (input.id !== undefined && !RULE_ID.test(input.id)) throw invalid('invalid_rule_id', 'id must be 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit');
      const now = clock.now();
      const created: OidcRule = { id: input.id ?? deps.newId(), ...ruleFields(input), createdAt: now, updatedAt: now };
      await store.insertOidcRule(created).catch((e: unknown) => {
        if (e instanceof DomainError && e.kind === 'conflict') throw new DomainError('conflict', 'oidc_rule_exists', `an OIDC provisioning rule with id ${created.id} exists already`);
        throw e;
      });
      deps.onRulesChanged();
      audit({ action: 'oidc_rule.create', actor: actor.id, target: created.id, issuerUrl: created.issuerUrl, assignRoleIds: created.assignRoleIds });
      return created;
    },

    async update(actor: Principal, id: string, input: SaveRuleInput): Promise<OidcRule> {
      if (input.id !== undefined && input.id !== id) throw invalid('rule_id_mismatch', `the body's id (${input.id}) differs from the path's (${id})`);
      const fields = ruleFields(input);
      const existing = await rule(id);
      const updated: OidcRule = { ...existing, ...fields, updatedAt: clock.now() };
      if (!(await store.updateOidcRule(updated))) await rule(id); // deleted meanwhile: 404
      deps.onRulesChanged();
      audit({ action: 'oidc_rule.update', actor: actor.id, target: id, issuerUrl: updated.issuerUrl, enabled: updated.enabled, assignRoleIds: updated.assignRoleIds });
      return updated;
    },

    async remove(actor: Principal, id: string): Promise<void> {
      if (!(await store.deleteOidcRule({ id, now: clock.now() }))) await rule(id);
      deps.onRulesChanged();
      audit({ action: 'oidc_rule.delete', actor: actor.id, target: id });
    },

    /**
     * The principals this rule admitted whose stored claims it no longer admits (or the rule
     * is disabled, deleted, or names another issuer or audience now), and the roles they lose.
     * With `apply`, takes those roles away and forgets the grants; applying again finds nothing.
     */
    async reconcile(actor: Principal, ruleId: string, apply: boolean): Promise<Reconciliation> {
      const target = await store.getOidcRule(ruleId);
      if (!target) throw invalid('unknown_oidc_rule', `no OIDC provisioning rule has id ${ruleId}`);
      const rules = new Map<string, OidcRule | undefined>();
      const stale: { grantee: OidcGrantee; lose: string[] }[] = [];
      for (const grantee of await store.listOidcGrantees(ruleId)) {
        if (await judge.admits(target, grantee.identity, grantee.principal.attributes)) continue;
        stale.push({ grantee, lose: await rolesLost(target, grantee, rules) });
      }
      const unassignRoleIds = [...new Set(stale.flatMap((s) => s.lose))].sort();
      if (!apply) return { ruleId, unassignRoleIds, principals: stale.map((s) => s.grantee.principal), applied: false };

      if (unassignRoleIds.includes(GUARDED_ROLE)) {
        const losing = new Set(stale.filter((s) => s.lose.includes(GUARDED_ROLE)).map((s) => s.grantee.principal.id));
        const holders = await store.listPrincipalsWithRole(GUARDED_ROLE);
        if (holders.every((h) => losing.has(h.id))) throw lastHolderError(holders.at(-1)?.id ?? '?');
      }
      const principals: Principal[] = [];
      const now = clock.now();
      for (const { grantee, lose } of stale) {
        const principalId = grantee.principal.id;
        if ((await store.revokeOidcGrant({ principalId, ruleId, roleIds: lose, guardRoleId: GUARDED_ROLE, now })) === 'last_holder') throw lastHolderError(principalId);
        principals.push((await store.getPrincipal(principalId)) ?? grantee.principal);
      }
      audit({ action: 'oidc_rule.reconcile', actor: actor.id, target: ruleId, principalIds: principals.map((p) => p.id), unassignRoleIds });
      return { ruleId, unassignRoleIds, principals, applied: true };
    },
  };
}
