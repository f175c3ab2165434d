import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createCas } from './blobs/cas.ts';
import { createFsDriver } from './blobs/fs/fs-driver.ts';
import { isDomainError } from './domain/errors.ts';
import type { Config, JobKindName } from './config.ts';
import { createHttpServer } from './http/server.ts';
import { composeSurface } from './http/compose/surface.ts';
import { ociSurface } from './http/oci/surface.ts';
import { streamsRoutes } from './http/streams/routes.ts';
import { aliasRoutes } from './http/v1/aliases.ts';
import { artifactRoutes } from './http/v1/artifacts.ts';
import { authRoutes } from './http/v1/auth.ts';
import { blobRoutes } from './http/v1/blobs.ts';
import { loadContract } from './http/v1/contract.ts';
import { readComposeContract, readContractFiles } from './http/v1/contract-files.ts';
import { imageRoutes } from './http/v1/images.ts';
import { metaRoutes } from './http/v1/meta.ts';
import { oidcRuleRoutes } from './http/v1/oidc-rules.ts';
import { publishRoutes } from './http/v1/publish.ts';
import { contractSurface } from './http/v1/scope.ts';
import { uploadRoutes } from './http/v1/uploads.ts';
import { composeJob, sweepComposeLeftovers } from './jobs/compose-job.ts';
import { ingestJob } from './jobs/ingest-job.ts';
import { publishJob } from './jobs/publish-job.ts';
import { createJobRunner, type JobWorker } from './jobs/runner.ts';
import { createSweeper } from './jobs/sweeper.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { createFailpoints } from './lib/failpoints.ts';
import { instrument } from './lib/instrument.ts';
import { createCelEvaluator } from './auth/cel-evaluator.ts';
import { createOidcVerifier } from './auth/oidc-verifier.ts';
import { createAliasService } from './services/aliases.ts';
import { createArtifactService } from './services/artifacts.ts';
import { createAuditLog } from './services/audit.ts';
import { createAuthService } from './services/auth.ts';
import { createAuthAdminService } from './services/auth-admin.ts';
import { createBlobService } from './services/blobs.ts';
import { createCatalogService } from './services/catalog.ts';
import { createComposeService } from './services/compose.ts';
import { createFeedService } from './services/feed.ts';
import { createIngestService } from './services/ingest.ts';
import { createOidcAuthenticator } from './services/oidc-auth.ts';
import { createRuleJudge } from './services/oidc-conditions.ts';
import { createOidcRuleService } from './services/oidc-rules.ts';
import { createPublishService } from './services/publish.ts';
import { createPartWrites } from './services/part-writes.ts';
import { createRegistryUploads } from './services/registry-uploads.ts';
import { createRegistryAccess } from './services/registry/access.ts';
import { createRegistryBlobs } from './services/registry/blobs.ts';
import { createManifestService } from './services/registry/manifests.ts';
import { createProjection } from './services/registry/projection.ts';
import { createUploadService } from './services/uploads.ts';
import type { MetadataStore } from './store/metadata-store.ts';
import { createSqlMetadataStore } from './store/sql/sql-metadata-store.ts';

export interface App {
  /** `imgsrv serve`: bootstraps the first admin if needed, starts the configured jobs and the sweeper, and listens. */
  serve(): Promise<{ url: string; jobs: string[]; bootstrap: { created: boolean; renewed: boolean; plaintext?: string } }>;
  /** `imgsrv worker`: only the configured jobs and the sweeper, no HTTP (e.g. image builds on their own machines). */
  work(): Promise<{ jobs: string[] }>;
  /** Runs one sweep now (expiry of abandoned uploads, removal of finished sessions' parts), as the sweeper does periodically. */
  sweep(): Promise<void>;
  /** Stops accepting requests, releases running jobs, closes the store. Idempotent. */
  stop(): Promise<void>;
}

/** What tests may replace: the source of time (token expiry, upload TTLs without sleeping). */
export interface AppOptions {
  clock?: Clock;
}

const SHUTDOWN_GRACE_MS = 10_000;

/** OIDC verification: issuer requests, clock skew, token age, and caching of discovery and keys. */
const OIDC = { timeoutMs: 5000, clockToleranceSeconds: 30, maxTokenAgeSeconds: 24 * 3600, discoveryTtlMs: 3600_000, jwksCooldownMs: 30_000, jwksMaxAgeMs: 600_000 };
/** Lifetime of a registry token from `/v2/token` (clients fetch a new one when it lapses). */
const REGISTRY_TOKEN_TTL_SECONDS = 300;
/** Time a provisioning rule's condition may take on one token. */
const CEL_BUDGET_MS = 100;

/** The server cannot start for a reason the operator must fix or wait out; `main.ts` prints it as one line. */
export class StartupError extends Error {
  override name = 'StartupError';
}

async function openStore(database: Config['database'], log: Logger): Promise<MetadataStore> {
  try {
    // Each driver is loaded only where it is used.
    if (database.kind === 'sqlite') return createSqlMetadataStore(await (await import('./store/sqlite/sqlite-adapter.ts')).openSqlite(database.file));
    const { openPostgres } = await import('./store/postgres/postgres-adapter.ts');
    const adapter = await openPostgres({ url: database.url, onIdleError: (err) => log.warn({ err }, 'idle PostgreSQL connection lost') });
    return createSqlMetadataStore(adapter);
  } catch (e) {
    const where = database.kind === 'sqlite' ? database.file : database.display;
    throw new StartupError(`cannot open the metadata database ${where}: ${reason(e)}`, { cause: e });
  }
}

/** The innermost useful message of a driver error (a refused connection is an AggregateError with an empty one). */
function reason(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return [...new Set(e.errors.map(reason))].join('; ');
  if (e instanceof Error && e.cause instanceof Error && (isDomainError(e) || !e.message)) return reason(e.cause);
  return e instanceof Error ? e.message || e.name : String(e);
}

/** The one place that chooses implementations and wires them together. */
export async function buildApp(config: Config, log: Logger, opts: AppOptions = {}): Promise<App> {
  const clock = opts.clock ?? systemClock;
  await mkdir(config.dataDir, { recursive: true });
  const failpoint = createFailpoints(config.failpoints, log);
  const store = instrument(await openStore(config.database, log), 'metadata', log);
  const { blobStore } = config;
  // The S3 client is loaded only where it is used (some 20 MB of memory otherwise), as are the database drivers.
  const driver = blobStore.kind === 's3' ? (await import('./blobs/s3/s3-driver.ts')).createS3Driver({ ...blobStore, failpoint }) : await createFsDriver({ root: config.dataDir, failpoint });
  const blobs = createCas(instrument(driver, 'blobs', log));
  const base = { store, blobs, clock, log, newId: randomUUID };

  const ingest = createIngestService({ ...base, uploadTtlSeconds: config.uploadTtlSeconds, failpoint });
  // The runner is made below, once the services its handlers use exist; requests only come after.
  const onJobEnqueued = () => jobs.notify();
  const audit = createAuditLog(log, clock);
  const cel = createCelEvaluator({ budgetMs: CEL_BUDGET_MS });
  const judge = createRuleJudge({ log, cel });
  const oidc = createOidcAuthenticator({ ...base, verifier: createOidcVerifier({ ...OIDC, now: () => clock.now() }), judge, audit });
  const auth = createAuthService({ ...base, oidc });
  const admin = createAuthAdminService({ ...base, audit, maxTokenLifetimeSeconds: config.maxTokenLifetimeSeconds });
  const rules = createOidcRuleService({ ...base, judge, audit, onRulesChanged: () => oidc.forget() });
  const writes = createPartWrites({ store, clock });
  const uploads = createUploadService({
    ...base,
    writes,
    uploadTtlMs: config.uploadTtlSeconds * 1000,
    maxPartBytes: config.maxPartBytes,
    onJobEnqueued,
  });
  const blobService = createBlobService(base);
  const catalog = createCatalogService({ ...base, audit });
  const artifacts = createArtifactService({ ...base, audit, catalog });
  const aliases = createAliasService({ ...base, audit, catalog });
  const publish = createPublishService({ ...base, audit, catalog, onJobEnqueued });
  const feed = createFeedService(base);
  const registryUploads = createRegistryUploads({ ...base, writes, ingest, uploadTtlMs: config.uploadTtlSeconds * 1000, maxBlobBytes: config.maxBlobBytes });
  const projection = createProjection({ catalog, aliases: async (name) => (await aliases.list(name)).map((a) => a.alias) });
  const registry = createRegistryBlobs({ ...base, uploads: registryUploads, projection, audit, projectedNames: async () => (await catalog.listImages()).map((i) => i.name) });
  const manifests = createManifestService({ ...base, projection, audit });
  const access = createRegistryAccess({ ...base, auth, anonymousPull: config.ociAnonymousPull, tokenTtlSeconds: REGISTRY_TOKEN_TTL_SECONDS });
  const composes = createComposeService({ ...base, audit, defaultMirror: config.compose.mirror, onJobEnqueued });
  const composeWork = { store, workDir: config.compose.workDir, log };
  const handlers: Record<JobKindName, JobWorker['handler']> = {
    ingest: ingestJob(ingest),
    publish: publishJob({ ...base, failpoint }),
    compose: composeJob({ ...base, ...composeWork, catalog: { catalog, artifacts, publish, aliases }, cacheDir: config.compose.cacheDir, breakBoot: config.failpoints.includes('compose-break-boot'), failpoint }),
  };
  const jobs = createJobRunner({
    store,
    workers: config.jobs.map(({ kind, concurrency }) => ({ handler: handlers[kind], concurrency })),
    leaseMs: config.jobLeaseSeconds * 1000,
    pollMs: 1000,
    clock,
    log,
  });
  const startJobs = async () => {
    if (config.jobs.some((j) => j.kind === 'compose')) await sweepComposeLeftovers(composeWork);
    await jobs.start();
  };
  const contract = loadContract(readContractFiles());
  const server = createHttpServer({
    log,
    tls: config.tls,
    maxJsonBytes: config.maxJsonBytes,
    surfaces: [
      contractSurface({ contract, auth, prefix: '', routes: [metaRoutes({ contract, checks: { metadata: () => store.ping(), blobs: () => blobs.ping() } })] }),
      contractSurface({
        contract,
        auth,
        prefix: '/v1',
        routes: [
          authRoutes({ admin }),
          oidcRuleRoutes({ rules }),
          uploadRoutes({ uploads, publicUrl: config.publicUrl }),
          blobRoutes({ blobs: blobService }),
          imageRoutes({ catalog, publicUrl: config.publicUrl }),
          artifactRoutes({ artifacts, blobs: blobService }),
          publishRoutes({ publish }),
          aliasRoutes({ aliases }),
        ],
      }),
      contractSurface({ contract, auth, prefix: '/streams', routes: [streamsRoutes({ feed })] }),
      ociSurface({ access, registry, manifests, uploads: registryUploads, cas: blobService, publicUrl: config.publicUrl }),
      composeSurface({ composes, auth, openapi: readComposeContract() }),
    ],
  });

  const sweeper = createSweeper({ sweep: () => ingest.sweep(), intervalMs: Math.min(60_000, Math.max(250, (config.uploadTtlSeconds * 1000) / 4)), log });
  let stopped: Promise<void> | undefined;

  return {
    async serve() {
      const bootstrap = await auth.bootstrap({ token: config.bootstrapToken, ttlSeconds: config.bootstrapTokenTtlSeconds });
      await startJobs();
      sweeper.start();
      await server.listen({ host: config.host, port: config.port });
      const { port } = server.server.address() as AddressInfo;
      const host = config.host.includes(':') ? `[${config.host}]` : config.host;
      return { url: `${config.tls ? 'https' : 'http'}://${host}:${port}`, jobs: jobs.kinds, bootstrap };
    },
    async work() {
      await startJobs();
      sweeper.start();
      return { jobs: jobs.kinds };
    },
    async sweep() {
      await ingest.sweep();
    },
    stop() {
      stopped ??= (async () => {
        await sweeper.stop();
        // In-flight requests get a grace period; a download to a client that stopped reading does not hold shutdown.
        const force = setTimeout(() => server.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await server.close();
        clearTimeout(force);
        await jobs.stop();
        await cel.close();
        await store.close();
      })();
      return stopped;
    },
  };
}
