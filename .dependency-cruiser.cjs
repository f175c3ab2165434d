/**
 * Dependency direction (DESIGN.md): http|cli → client|services → domain;
 * services → store|blobs|auth|streams (interfaces only); app.ts wires implementations.
 * domain/ and streams/ import no I/O.
 */
const io = '^(node:)?(fs|fs/promises|net|http|https|http2|child_process|dgram|dns|tls|worker_threads|cluster)$';
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    { name: 'pure-domain', comment: 'domain/ and streams/ are pure: no I/O, no other layers',
      severity: 'error', from: { path: '^src/(domain|streams)/' },
      to: { pathNot: '^src/(domain|streams)/|^node_modules/(yaml)/', dependencyTypesNot: ['type-only'] } },
    { name: 'pure-domain-no-io', severity: 'error', from: { path: '^src/(domain|streams)/' },
      to: { path: io, dependencyTypes: ['core'] } },
    { name: 'services-not-http', comment: 'services never know HTTP, fastify or config',
      severity: 'error', from: { path: '^src/(services|jobs|store|blobs|auth|streams|domain)/' },
      to: { path: '^src/(http|oci|cli)/|^src/(config|app|main)\\.ts$|^node_modules/fastify' } },
    { name: 'interfaces-only', comment: 'only app.ts (and test code) picks implementations',
      severity: 'error', from: { path: '^src/', pathNot: '^src/app\\.ts$|^src/(store|blobs)/' },
      to: { path: '^src/store/(sqlite|postgres|sql)/|^src/blobs/(fs|s3)/' } },
    { name: 'store-blobs-leaf', comment: 'stores and blob stores depend on domain only',
      severity: 'error', from: { path: '^src/(store|blobs)/' },
      to: { path: '^src/(services|jobs|http|auth|streams)/' } },
    { name: 'services-no-database-driver', comment: 'services reach the database only through the MetadataStore interface',
      severity: 'error', from: { path: '^src/(services|jobs|domain|streams|auth)/' },
      to: { path: '^node_modules/(pg|better-sqlite3|kysely|@aws-sdk)/' } },
    { name: 'http-no-store', comment: 'HTTP handlers call services; they never touch a store or a byte driver',
      severity: 'error', from: { path: '^src/http/' }, to: { path: '^src/(store|blobs)/', dependencyTypesNot: ['type-only'] } },
    { name: 'scopes-own-their-routes', comment: "a surface's resource routes are registered by app.ts into that surface only",
      severity: 'error', from: { path: '^src/http/(?!v1/)' },
      to: { path: '^src/http/v1/(?!scope|route|problem|contract|contract-files|json-body)[^/]+\\.ts$' } },
    { name: 'client-speaks-http', comment: 'the client (and the CLI) never import server code: they speak HTTP',
      severity: 'error', from: { path: '^src/(client|cli)/' }, to: { path: '^src/(?!client/|cli/)' } },
    { name: 'no-orphans', comment: 'every module is used (entry points excepted)', severity: 'error',
      from: { orphan: true, pathNot: ['^src/main\\.ts$', '^src/auth/cel-worker\\.ts$', '^src/client/', '\\.d\\.ts$'] }, to: {} },
    { name: 'config-only-in-app', comment: 'configuration is wired once in app.ts/main.ts',
      severity: 'error', from: { path: '^src/', pathNot: '^src/(app|main|config)\\.ts$' },
      to: { path: '^src/config\\.ts$', dependencyTypesNot: ['type-only'] } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
