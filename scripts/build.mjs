// Bundles the server into dist/main.mjs (plain JavaScript, dependencies left external), so that
// `npm start` runs no transpiler, and converts the served contract to dist/imgsrv-v1.openapi.json,
// so that the server needs no YAML parser. Every output is written to a temporary name and
// renamed, so concurrent builds (parallel test files) never expose a half-written file.
import { buildSync } from 'esbuild';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLE = fileURLToPath(new URL('../dist/main.mjs', import.meta.url));
const CONTRACT_YAML = fileURLToPath(new URL('../openapi/imgsrv-v1.yaml', import.meta.url));
const CONTRACT_JSON = fileURLToPath(new URL('../dist/imgsrv-v1.openapi.json', import.meta.url));

export function build() {
  mkdirSync(new URL('../dist', import.meta.url), { recursive: true });
  const temp = `${BUNDLE}.${process.pid}.tmp`;
  buildSync({
    absWorkingDir: ROOT,
    entryPoints: ['src/main.ts'],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    sourcemap: 'inline',
    outfile: temp,
    logLevel: 'warning',
  });
  renameSync(temp, BUNDLE);
  writeFileSync(`${CONTRACT_JSON}.${process.pid}.tmp`, JSON.stringify(parse(readFileSync(CONTRACT_YAML, 'utf8'))));
  renameSync(`${CONTRACT_JSON}.${process.pid}.tmp`, CONTRACT_JSON);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) build();
