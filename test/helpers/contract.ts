import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadContract, type Contract } from '../../src/http/v1/contract.ts';
import { CONTRACT_YAML } from '../../src/http/v1/contract-files.ts';
import { REPO_ROOT } from './server.ts';

/** The served contract, parsed straight from the YAML (tests do not depend on a build). */
export function servedContract(): Contract {
  const yaml = readFileSync(join(REPO_ROOT, CONTRACT_YAML), 'utf8');
  return loadContract({ yaml, document: parse(yaml) });
}
