import { DomainError } from '../../domain/errors.ts';

/** Request bodies nest at most this deep: deeper structures serve no field of the contract and could exhaust the stack later. */
export const MAX_JSON_DEPTH = 32;

/**
 * Parses a JSON request body and checks what JSON.parse allows but nothing stored may hold:
 * nesting deeper than MAX_JSON_DEPTH, and U+0000 in any string or key (PostgreSQL cannot store
 * it, and no name or description needs it). Iterative, so a hostile body cannot overflow the
 * stack here either. Errors are `invalid` with the codes `invalid_json`, `json_too_deep` and
 * `invalid_text`.
 */
export function parseJsonBody(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new DomainError('invalid', 'invalid_json', `the request body is not valid JSON: ${(e as Error).message}`);
  }
  const pending: { node: unknown; depth: number; path: string }[] = [{ node: value, depth: 0, path: '' }];
  while (pending.length > 0) {
    const { node, depth, path } = pending.pop()!;
    if (typeof node === 'string') {
      if (node.includes('\u0000')) throw nul(path);
      continue;
    }
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= MAX_JSON_DEPTH) {
      throw new DomainError('invalid', 'json_too_deep', `the request body is nested more than ${MAX_JSON_DEPTH} levels deep`);
    }
    for (const [key, child] of Object.entries(node)) {
      const at = Array.isArray(node) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      if (key.includes('\u0000')) throw nul(at);
      pending.push({ node: child, depth: depth + 1, path: at });
    }
  }
  return value;
}

const nul = (path: string) =>
  new DomainError('invalid', 'invalid_text', `U+0000 is not allowed in text (request body ${path ? `field "${path.replaceAll('\u0000', '\\u0000').slice(0, 100)}"` : 'string'})`);
