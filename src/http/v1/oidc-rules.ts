import type { OidcRuleService, SaveRuleInput } from '../../services/oidc-rules.ts';
import { reconciliationDto, ruleDto } from './auth-dto.ts';
import type { ContractRouter } from './route.ts';

type RuleParams = { Params: { rule_id: string } };
interface SaveRuleBody {
  id?: string;
  display_name: string;
  issuer_url: string;
  audience: string;
  forwarded_claims?: string[];
  condition: string;
  enabled?: boolean;
  assign_role_ids?: string[];
}

const saveInput = (b: SaveRuleBody): SaveRuleInput => ({
  id: b.id,
  displayName: b.display_name,
  issuerUrl: b.issuer_url,
  audience: b.audience,
  forwardedClaims: b.forwarded_claims,
  condition: b.condition,
  enabled: b.enabled,
  assignRoleIds: b.assign_role_ids,
});

/** `/v1/auth/oidc-provisioning-rules`: which CI identities may act, with which roles. */
export function oidcRuleRoutes(deps: { rules: OidcRuleService }) {
  const { rules } = deps;
  return (r: ContractRouter) => {
    r.define('listOIDCProvisioningRules', { action: 'auth.read' }, async () => ({ rules: (await rules.list()).map(ruleDto) }));

    r.define<{ Body: SaveRuleBody }>('createOIDCProvisioningRule', { action: 'auth.write' }, async (request, reply) =>
      reply.code(201).send(ruleDto(await rules.create(request.principal!, saveInput(request.body)))),
    );

    r.define<RuleParams>('getOIDCProvisioningRule', { action: 'auth.read' }, async (request) => ruleDto(await rules.get(request.params.rule_id)));

    r.define<RuleParams & { Body: SaveRuleBody }>('updateOIDCProvisioningRule', { action: 'auth.write' }, async (request) =>
      ruleDto(await rules.update(request.principal!, request.params.rule_id, saveInput(request.body))),
    );

    r.define<RuleParams>('deleteOIDCProvisioningRule', { action: 'auth.write' }, async (request, reply) => {
      await rules.remove(request.principal!, request.params.rule_id);
      return reply.code(204).send();
    });

    r.define<RuleParams>('previewOIDCProvisioningRuleReconciliation', { action: 'auth.read' }, async (request) =>
      reconciliationDto(await rules.reconcile(request.principal!, request.params.rule_id, false)),
    );

    r.define<RuleParams>('reconcileOIDCProvisioningRule', { action: 'auth.write' }, async (request) =>
      reconciliationDto(await rules.reconcile(request.principal!, request.params.rule_id, true)),
    );
  };
}
