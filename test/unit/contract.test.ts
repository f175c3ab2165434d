import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/server.ts';

type Node = Record<string, any>;
const seed = parse(readFileSync(join(REPO_ROOT, 'openapi/seed/imgsrv-v1.openapi.yaml'), 'utf8')) as Node;
const served = parse(readFileSync(join(REPO_ROOT, 'openapi/imgsrv-v1.yaml'), 'utf8')) as Node;

const LIMIT_KEYWORDS = new Set(['maxLength', 'maxItems', 'maxProperties', 'format', 'x-imgsrv-extension', 'description']);

/** Every difference between seed and served copy must be an addition marked x-imgsrv-extension. */
function assertOnlyMarkedAdditions(a: unknown, b: unknown, path: string): void {
  if (typeof a !== 'object' || a === null) {
    assert.deepEqual(b, a, `${path} changed`);
    return;
  }
  if (Array.isArray(a)) {
    assert.ok(Array.isArray(b), `${path} is no longer an array`);
    assert.equal((b as unknown[]).length, a.length, `${path} changed length`);
    a.forEach((x, i) => assertOnlyMarkedAdditions(x, (b as unknown[])[i], `${path}[${i}]`));
    return;
  }
  const bo = b as Node;
  // A seed schema may gain limits of its own (an imgsrv maximum length, a format): the node then
  // says so with the marker and a description, and nothing of the seed's changes.
  const limited = bo['x-imgsrv-extension'] === true && typeof bo.description === 'string' && !('x-imgsrv-extension' in (a as Node));
  for (const [k, v] of Object.entries(a)) {
    if (path === '' && k === 'info') continue;
    assert.ok(k in bo, `${path}.${k} was removed`);
    if (k === 'enum' && limited && Array.isArray(v)) {
      assertMarkedEnumValues(v, bo.enum, bo.description as string, `${path}.enum`);
      continue;
    }
    assertOnlyMarkedAdditions(v, bo[k], `${path}.${k}`);
  }
  for (const k of Object.keys(bo)) {
    if (k in a) continue;
    if (limited && LIMIT_KEYWORDS.has(k)) continue;
    const added = bo[k] as Node;
    assert.ok(added?.['x-imgsrv-extension'] === true, `${path}.${k} was added without x-imgsrv-extension: true`);
    assert.ok(typeof added.description === 'string' && added.description.length > 20, `${path}.${k} needs a description`);
  }
}

/**
 * An enum cannot be widened by a marked addition beside it (schema keywords only narrow), so a
 * marked node may append values to the seed's list, each named in its description as `value`.
 */
function assertMarkedEnumValues(seedValues: unknown[], served: unknown, description: string, path: string): void {
  assert.ok(Array.isArray(served), `${path} is no longer an array`);
  assert.deepEqual(served.slice(0, seedValues.length), seedValues, `${path} changed the seed's values`);
  for (const added of served.slice(seedValues.length)) {
    assert.ok(typeof added === 'string' && description.includes(`\`${added}\``), `${path} adds ${JSON.stringify(added)} without naming it in the node's description`);
  }
}

describe('served contract', () => {
  it('is the seed plus marked, described, optional additions only', () => {
    assertOnlyMarkedAdditions(seed, served, '');
  });
});
