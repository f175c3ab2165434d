import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface, RouteHandlerMethod } from 'fastify';
import type { Principal } from '../../domain/auth.ts';
import type { Action } from '../../domain/roles.ts';
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
    /** The authenticated caller, on routes that need one. */
    principal?: Principal;
  }
}

/** Registers contract operations in one scope; a resource's route file receives one. */
export interface ContractRouter {
  /**
   * Registers the handler for one contract operation: method, path, parameter and body schemas
   * come from the contract. A secured operation must name its action and a public one must not,
   * so no route can silently skip (or invent) authorization.
   */
  define<T extends RouteGenericInterface = RouteGenericInterface>(
    operationId: string,
    options: { action?: Action },
    handler: (request: FastifyRequest<T>, reply: FastifyReply) => Promise<unknown>,
  ): void;
}

/** The router of a scope registered at `prefix`: operations must lie under it. */
export function contractRouter(app: FastifyInstance, contract: Contract, prefix: string): ContractRouter {
  return {
    define(operationId, options, handler) {
      const op = contract.operation(operationId);
      if (op.secured !== (options.action !== undefined)) {
        throw new Error(`${operationId}: the contract ${op.secured ? 'requires bearerAuth but no action is given' : 'declares no security but an action is given'}`);
      }
      if (!op.url.startsWith(prefix)) throw new Error(`${operationId} (${op.path}) is not under this scope's prefix ${prefix}`);
      // RFC 9110 §9.3.2: HEAD wherever GET is, with the same headers and no body. Where the contract
      // has a HEAD operation of its own (blob downloads), that one is registered instead.
      const ownHead = [...contract.operations.values()].some((o) => o.method === 'HEAD' && o.path === op.path);
      app.route({
        method: op.method,
        url: op.url.slice(prefix.length) || '/',
        exposeHeadRoute: op.method === 'GET' && !ownHead,
        schema: { ...(op.params && { params: op.params }), ...(op.body?.schema && { body: op.body.schema }) },
        config: { action: options.action, bodyMediaType: op.body?.mediaType, operationId },
        handler: handler as unknown as RouteHandlerMethod,
      });
    },
  };
}
