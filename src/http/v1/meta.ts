import type { FastifyInstance } from 'fastify';
import type { Contract } from '../contract.ts';
import { problem, sendProblem } from '../problem.ts';
import { defineRoute } from '../route.ts';

/** Liveness, readiness, and the served contract (the publishing flow links `/openapi/v1.yaml`). */
export function metaRoutes(deps: { contract: Contract; checks: Record<string, () => Promise<void>> }) {
  const { contract } = deps;
  return (app: FastifyInstance) => {
    defineRoute(app, contract, 'getHealth', {}, async () => ({ status: 'ok' }));

    defineRoute(app, contract, 'getReadiness', {}, async (request, reply) => {
      const failed: string[] = [];
      await Promise.all(
        Object.entries(deps.checks).map(async ([name, check]) => {
          try {
            await withTimeout(check(), 2000);
          } catch (err) {
            request.log.warn({ err, check: name }, 'readiness check failed');
            failed.push(name);
          }
        }),
      );
      if (failed.length > 0) return sendProblem(reply, problem(503, 'not_ready', `not ready: ${failed.sort().join(', ')} unavailable`));
      return { status: 'ready' };
    });

    defineRoute(app, contract, 'getOpenApiYaml', {}, async (_request, reply) => reply.type('application/yaml').send(contract.yaml));
    defineRoute(app, contract, 'getOpenApiJson', {}, async (_request, reply) => reply.type('application/json').send(contract.json));
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
