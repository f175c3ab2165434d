import type { Contract } from './contract.ts';
import { problem, sendProblem } from './problem.ts';
import type { ContractRouter } from './route.ts';

/** Liveness, readiness, and the served contract (the publishing flow links `/openapi/v1.yaml`). */
export function metaRoutes(deps: { contract: Contract; checks: Record<string, () => Promise<void>> }) {
    return (r: ContractRouter) => {
    r.define('getHealth', {}, async () => ({ status: 'ok' }));

    r.define('getReadiness', {}, async (request, reply) => {
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

    r.define('getOpenApiYaml', {}, async (_request, reply) => reply.type('application/yaml').send(deps.contract.yaml));
    r.define('getOpenApiJson', {}, async (_request, reply) => reply.type('application/json').send(deps.contract.json));
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}
