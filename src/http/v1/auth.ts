import type { FastifyInstance } from 'fastify';
import type { PrincipalKind } from '../../domain/auth.ts';
import { ROLES } from '../../domain/roles.ts';
import type { AuthAdminService } from '../../services/auth-admin.ts';
import { principalDto, roleDto, tokenDto } from '../auth-dto.ts';
import type { Contract } from '../contract.ts';
import { defineRoute } from '../route.ts';

type PrincipalParams = { Params: { principal_id: string } };

/** `/v1/auth`: roles, principals, role assignments and API tokens. Only `auth-manager` holds auth.read and auth.write. */
export function authRoutes(deps: { contract: Contract; admin: AuthAdminService }) {
  const { contract, admin } = deps;
  return (app: FastifyInstance) => {
    defineRoute(app, contract, 'listAuthRoles', { action: 'auth.read' }, async () => ({ roles: ROLES.map(roleDto) }));

    defineRoute(app, contract, 'listAuthPrincipals', { action: 'auth.read' }, async () => ({ principals: (await admin.listPrincipals()).map(principalDto) }));

    defineRoute<{ Body: { kind: PrincipalKind; display_name: string; attributes?: Record<string, unknown> } }>(
      app,
      contract,
      'createAuthPrincipal',
      { action: 'auth.write' },
      async (request, reply) => {
        const { kind, display_name: displayName, attributes } = request.body;
        return reply.code(201).send(principalDto(await admin.createPrincipal(request.principal!, { kind, displayName, attributes })));
      },
    );

    defineRoute<PrincipalParams>(app, contract, 'getAuthPrincipal', { action: 'auth.read' }, async (request) => principalDto(await admin.getPrincipal(request.params.principal_id)));

    type RoleParams = { Params: { principal_id: string; role_id: string } };
    defineRoute<RoleParams>(app, contract, 'assignAuthPrincipalRole', { action: 'auth.write' }, async (request, reply) => {
      await admin.assignRole(request.principal!, request.params.principal_id, request.params.role_id);
      return reply.code(204).send();
    });

    defineRoute<RoleParams>(app, contract, 'unassignAuthPrincipalRole', { action: 'auth.write' }, async (request, reply) => {
      await admin.unassignRole(request.principal!, request.params.principal_id, request.params.role_id);
      return reply.code(204).send();
    });

    defineRoute<PrincipalParams>(app, contract, 'listAuthPrincipalAPITokens', { action: 'auth.read' }, async (request) => ({
      api_tokens: (await admin.listTokens(request.params.principal_id)).map((t) => tokenDto(t)),
    }));

    defineRoute<PrincipalParams & { Body: { name?: string; expires_at: string } }>(app, contract, 'issueAuthPrincipalAPIToken', { action: 'auth.write' }, async (request, reply) => {
      const { name, expires_at: expiresAt } = request.body;
      const { token, plaintext } = await admin.issueToken(request.principal!, request.params.principal_id, { name, expiresAt: new Date(expiresAt) });
      return reply.code(201).header('cache-control', 'no-store').send(tokenDto(token, plaintext));
    });

    defineRoute<{ Params: { token_id: string } }>(app, contract, 'revokeAuthAPIToken', { action: 'auth.write' }, async (request, reply) => {
      await admin.revokeToken(request.principal!, request.params.token_id);
      return reply.code(204).send();
    });
  };
}
