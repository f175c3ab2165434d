import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContractSource } from './contract.ts';

/** The served contract, edited by hand; see `x-imgsrv-extension` for what it adds to the seed. */
export const CONTRACT_YAML = 'openapi/imgsrv-v1.yaml';
/** The same document as JSON, written by `npm run build` so the server needs no YAML parser. */
export const CONTRACT_JSON = 'dist/imgsrv-v1.openapi.json';

/** The compose API's document as JSON (from openapi/compose-v2.yaml, written by `npm run build`). */
export const COMPOSE_CONTRACT_JSON = 'dist/compose-v2.openapi.json';

/** The compose API's served document. */
export const readComposeContract = (): unknown => JSON.parse(readFileSync(findUp(COMPOSE_CONTRACT_JSON), 'utf8')) as unknown;

/** Reads both files, found from this module upwards (the sources and the bundle alike). */
export function readContractFiles(): ContractSource {
  return { yaml: readFileSync(findUp(CONTRACT_YAML), 'utf8'), document: JSON.parse(readFileSync(findUp(CONTRACT_JSON), 'utf8')) as unknown };
}

function findUp(relative: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`${relative} not found above ${fileURLToPath(import.meta.url)} (run npm run build)`);
  }
}
