// Bundles the server into dist/main.mjs and its CEL worker into dist/cel-worker.mjs (plain
// JavaScript, dependencies left external), so that
// `npm start` runs no transpiler, and converts the served contracts (openapi/*.yaml) to
// dist/*.openapi.json, so that the server needs no YAML parser. Every output is written to a temporary name and
// renamed, so concurrent builds (parallel test files) never expose a half-written file.
import { buildSync } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BUNDLE = fileURLToPath(new URL('../dist/main.mjs', import.meta.url));
const CONTRACTS = ['imgsrv-v1', 'compose-v2'];

export function build() {
  mkdirSync(new URL('../dist', import.meta.url), { recursive: true });
  const temp = `${BUNDLE}.${process.pid}.tmp`;
  buildSync({
    absWorkingDir: ROOT,
    // The CEL worker thread (src/auth/cel-evaluator.ts) loads dist/cel-worker.mjs.
    entryPoints: { main: 'src/main.ts', 'cel-worker': 'src/auth/cel-worker.ts' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    sourcemap: 'inline',
    // What only some configurations use (the S3 client) is loaded only by them: its own chunk.
    splitting: true,
    chunkNames: 'chunk-[hash]',
    outdir: temp,
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  });
  // Chunks (named by their content) and the worker first: tests rebuild when main.mjs is older than the sources.
  for (const file of readdirSync(temp).filter((f) => f.startsWith('chunk-'))) renameSync(join(temp, file), join(dirname(BUNDLE), file));
  renameSync(join(temp, 'cel-worker.mjs'), join(dirname(BUNDLE), 'cel-worker.mjs'));
  renameSync(join(temp, 'main.mjs'), BUNDLE);
  rmSync(temp, { recursive: true, force: true });
  pruneChunks();
  for (const name of CONTRACTS) {
    const json = join(ROOT, 'dist', `${name}.openapi.json`);
    writeFileSync(`${json}.${process.pid}.tmp`, JSON.stringify(parse(readFileSync(join(ROOT, 'openapi', `${name}.yaml`), 'utf8'))));
    renameSync(`${json}.${process.pid}.tmp`, json);
  }
}

/**
 * Removes chunks of earlier builds: those no current output names and older than an hour (a
 * server started from an earlier build may still load its chunks lazily meanwhile).
 */
function pruneChunks() {
  const dist = dirname(BUNDLE);
  const chunks = readdirSync(dist).filter((f) => f.startsWith('chunk-') && f.endsWith('.mjs'));
  const current = [BUNDLE, join(dist, 'cel-worker.mjs'), ...chunks.map((c) => join(dist, c))].map((f) => readFileSync(f, 'utf8'));
  const named = (chunk) => current.some((text) => text.includes(`./${chunk}`));
  for (const chunk of chunks) {
    const file = join(dist, chunk);
    if (!named(chunk) && Date.now() - statSync(file).mtimeMs > 3600_000) rmSync(file, { force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) build();
