import type { PrincipalKind } from '../../domain/auth.ts';
import { ROLES } from '../../domain/roles.ts';
import type { AuthAdminService } from '../../services/auth-admin.ts';
import { principalDto, roleDto, tokenDto } from './auth-dto.ts';
import type { ContractRouter } from './route.ts';

type PrincipalParams = { Params: { principal_id: string } };

/** `/v1/auth`: roles, principals, role assignments and API tokens. Only `auth-manager` holds auth.read and auth.write. */
export function authRoutes(deps: { admin: AuthAdminService }) {
  const { admin } = deps;
  return (r: ContractRouter) => {
    r.define('listAuthRoles', { action: 'auth.read' }, async () => ({ roles: ROLES.map(roleDto) }));

    r.define('listAuthPrincipals', { action: 'auth.read' }, async () => ({ principals: (await admin.listPrincipals()).map(principalDto) }));

    r.define<{ Body: { kind: PrincipalKind; display_name: string; attributes?: Record<string, unknown> } }>('createAuthPrincipal',
      { action: 'auth.write' },
      async (request, reply) => {
        const { kind, display_name: displayName, attributes } = request.body;
        return reply.code(201).send(principalDto(await admin.createPrincipal(request.principal!, { kind, displayName, attributes })));
      },
    );

    r.define<PrincipalParams>('getAuthPrincipal', { action: 'auth.read' }, async (request) => principalDto(await admin.getPrincipal(request.params.principal_id)));

    type RoleParams = { Params: { principal_id: string; role_id: string } };
    r.define<RoleParams>('assignAuthPrincipalRole', { action: 'auth.write' }, async (request, reply) => {
      await admin.assignRole(request.principal!, request.params.principal_id, request.params.role_id);
      return reply.code(204).send();
    });

    r.define<RoleParams>('unassignAuthPrincipalRole', { action: 'auth.write' }, async (request, reply) => {
      await admin.unassignRole(request.principal!, request.params.principal_id, request.params.role_id);
      return reply.code(204).send();
    });

    r.define<PrincipalParams>('listAuthPrincipalAPITokens', { action: 'auth.read' }, async (request) => ({
      api_tokens: (await admin.listTokens(request.params.principal_id)).map((t) => tokenDto(t)),
    }));

    r.define<PrincipalParams & { Body: { name?: string; expires_at: string } }>('issueAuthPrincipalAPIToken', { action: 'auth.write' }, async (request, reply) => {
      const { name, expires_at: expiresAt } = request.body;
      const { token, plaintext } = await admin.issueToken(request.principal!, request.params.principal_id, { name, expiresAt: new Date(expiresAt) });
      return reply.code(201).header('cache-control', 'no-store').send(tokenDto(token, plaintext));
    });

    r.define<{ Params: { token_id: string } }>('revokeAuthAPIToken', { action: 'auth.write' }, async (request, reply) => {
      await admin.revokeToken(request.principal!, request.params.token_id);
      return reply.code(204).send();
    });
  };
}
