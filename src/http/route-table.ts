import type { FastifyReply, FastifyRequest } from 'fastify';
import { problem, sendProblem } from './v1/problem.ts';

/** Every registered route, to tell "no such resource" (404) from "not with this method" (405). */
export class RouteTable {
  private readonly routes: { method: string; pattern: RegExp }[] = [];

  add(method: string | string[], url: string): void {
    const pattern = new RegExp(`^${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:\w+/g, '[^/]+')}$`);
    for (const m of [method].flat()) this.routes.push({ method: m, pattern });
  }

  /** The methods some route accepts on this path (without its query). */
  allowed(path: string): string[] {
    return [...new Set(this.routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
  }

  /** The problem+json answer for a request no route matched: 405 with Allow, or 404. */
  notFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const path = request.url.split('?')[0]!;
    const allowed = this.allowed(path);
    if (allowed.length > 0) {
      return sendProblem(reply, problem(405, 'method_not_allowed', `${request.method} is not supported on ${path}; use ${allowed.join(', ')}`), { allow: allowed.join(', ') });
    }
    return sendProblem(reply, problem(404, 'route_not_found', `no route matches ${request.method} ${path}`));
  }
}
