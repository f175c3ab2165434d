import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface, RouteHandlerMethod } from 'fastify';
import type { Principal } from '../domain/auth.ts';
import type { Action } from '../domain/roles.ts';
import type { Contract } from './contract.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The action a principal needs for this route; set exactly on the contract's `bearerAuth` operations. */
    action?: Action;
    /** The media type the contract declares for the request body, checked before parsing (415). */
    bodyMediaType?: string;
    operationId?: string;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

/**
 * Registers the handler for one contract operation: method, path, parameter and body schemas
 * come from the contract. A secured operation must name its action and a public one must not,
 * so no route can silently skip (or invent) authorization.
 */
export function defineRoute<T extends RouteGenericInterface = RouteGenericInterface>(
  app: FastifyInstance,
  contract: Contract,
  operationId: string,
  options: { action?: Action },
  handler: (request: FastifyRequest<T>, reply: FastifyReply) => Promise<unknown>,
): void {
  const op = contract.operation(operationId);
  if (op.secured !== (options.action !== undefined)) {
    throw new Error(`${operationId}: the contract ${op.secured ? 'requires bearerAuth but no action is given' : 'declares no security but an action is given'}`);
  }
  // RFC 9110 §9.3.2: HEAD wherever GET is, with the same headers and no body. Where the contract
  // has a HEAD operation of its own (blob downloads), that one is registered instead.
  const ownHead = [...contract.operations.values()].some((o) => o.method === 'HEAD' && o.path === op.path);
  app.route({
    method: op.method,
    url: op.url,
    exposeHeadRoute: op.method === 'GET' && !ownHead,
    schema: { ...(op.params && { params: op.params }), ...(op.body?.schema && { body: op.body.schema }) },
    config: { action: options.action, bodyMediaType: op.body?.mediaType, operationId },
    handler: handler as unknown as RouteHandlerMethod,
  });
}
