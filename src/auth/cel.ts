import { Environment } from '@marcbachmann/cel-js';
import { STANDARD_CLAIMS } from '../domain/oidc.ts';

/**
 * CEL for OIDC provisioning conditions. A condition sees two variables:
 * - `claims`: the rule's forwarded claims (any JSON type) plus `iss` and `sub` (strings) and
 *   `aud` (a string or a list, as in the token). Naming any other claim is a type error, so a
 *   condition can always be re-evaluated from the claims stored on the principal.
 * - `identity`: `issuer` and `subject` of the token.
 * Structural limits keep parsing and checking cheap; regular expressions are refused (the
 * JavaScript engine backtracks, so `matches` would open the door to ReDoS); evaluation runs
 * with a time budget (cel-evaluator.ts).
 */
const LIMITS = { maxAstNodes: 256, maxDepth: 24, maxListElements: 64, maxMapEntries: 32, maxCallArguments: 8 };

const FORBIDDEN_FUNCTIONS = new Set(['matches']);

export function conditionEnvironment(forwardedClaims: readonly string[]): Environment {
  const schema: Record<string, string> = { iss: 'string', sub: 'string', aud: 'dyn' };
  for (const name of forwardedClaims) if (!(STANDARD_CLAIMS as readonly string[]).includes(name)) schema[name] = 'dyn';
  return new Environment({ limits: LIMITS })
    .registerVariable({ name: 'claims', schema })
    .registerVariable({ name: 'identity', schema: { issuer: 'string', subject: 'string' } });
}

/** Parses and type-checks a condition; returns the checker's message when it is not a valid boolean expression. */
export function checkCondition(condition: string, forwardedClaims: readonly string[]): { ok: true } | { ok: false; message: string } {
  const env = conditionEnvironment(forwardedClaims);
  let result: ReturnType<Environment['check']>;
  try {
    result = env.check(condition);
  } catch (e) {
    return { ok: false, message: (e as Error).message };
  }
  if (!result.valid) {
    const message = result.error?.message ?? 'the condition is not valid CEL';
    return { ok: false, message: message.startsWith('No such key') ? `${message}\n(a condition may use only the claims in forwarded_claims, plus iss, sub and aud, and identity.issuer and identity.subject)` : message };
  }
  if (result.type !== 'bool') {
    return { ok: false, message: `the condition must be a bool expression, but it is of type ${result.type}${result.type === 'dyn' ? ' (compare claims explicitly, e.g. claims.x == true)' : ''}` };
  }
  const forbidden = calledFunctions(env.parse(condition).ast).find((name) => FORBIDDEN_FUNCTIONS.has(name));
  if (forbidden) return { ok: false, message: `${forbidden}() is not allowed: regular expressions are not supported in conditions (use ==, in, startsWith, endsWith or contains)` };
  return { ok: true };
}

interface AstNode {
  op: string;
  args: unknown;
}
const isNode = (v: unknown): v is AstNode => typeof v === 'object' && v !== null && 'op' in v && 'args' in v;

/** Names of every function and method called anywhere in a cel-js AST (`call`/`rcall` nodes name theirs first). */
function calledFunctions(root: unknown): string[] {
  const names: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (!isNode(v)) return;
    if ((v.op === 'call' || v.op === 'rcall') && Array.isArray(v.args) && typeof v.args[0] === 'string') names.push(v.args[0]);
    visit(v.args);
  };
  visit(root);
  return names;
}
