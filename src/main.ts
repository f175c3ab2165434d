import { pino } from 'pino';
import { buildApp, StartupError } from './app.ts';
import { ConfigError, loadConfig, unknownSettings, type Config } from './config.ts';

/**
 * Process entry: `imgsrv serve` (the default: the HTTP server, and the jobs IMGSRV_JOBS names)
 * or `imgsrv worker` (only those jobs, no HTTP). Configuration → app → start; SIGINT/SIGTERM
 * shut down gracefully.
 */
const command = process.argv[2] ?? 'serve';
if (command !== 'serve' && command !== 'worker') {
  process.stderr.write(`imgsrv: unknown command ${JSON.stringify(command)}; use "serve" (the default) or "worker"\n`);
  process.exit(2);
}

let config: Config;
try {
  config = loadConfig();
} catch (e) {
  if (!(e instanceof ConfigError)) throw e;
  process.stderr.write(`imgsrv: configuration error: ${e.message}\n`);
  process.exit(2);
}

const log = pino({ level: config.logLevel, redact: ['req.headers.authorization'] });
for (const name of unknownSettings()) log.warn({ name }, 'unknown IMGSRV_ setting ignored (typo?)');
if (config.bootstrapToken !== undefined && config.bootstrapToken.length < 32) {
  log.warn({ length: config.bootstrapToken.length }, 'IMGSRV_BOOTSTRAP_TOKEN is short; use at least 32 random characters (openssl rand -hex 32)');
}

const app = await buildApp(config, log).catch((err: unknown) => {
  if (!(err instanceof StartupError)) throw err;
  process.stderr.write(`imgsrv: ${err.message}\n`);
  process.exit(1);
});

const say = (line: string) => process.stdout.write(`${line}\n`);
const jobsLine = (jobs: string[]) => (jobs.length > 0 ? `jobs: ${jobs.join(', ')}` : 'no jobs (IMGSRV_JOBS is empty)');
const { blobStore } = config;
const blobsAt = blobStore.kind === 's3' ? `, blobs in s3://${blobStore.bucket}/${blobStore.prefix}${blobStore.endpoint ? ` at ${blobStore.endpoint}` : ''}` : '';
say(`imgsrv data in ${config.dataDir} (${config.database.kind === 'sqlite' ? `SQLite ${config.database.file}` : `PostgreSQL ${config.database.display}`}${blobsAt})`);
if (command === 'worker') {
  const { jobs } = await app.work();
  say(`imgsrv worker running, ${jobsLine(jobs)}`);
} else {
  const { url, jobs, bootstrap } = await app.serve().catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE' || err.code === 'EACCES' || err.code === 'EADDRNOTAVAIL') {
      process.stderr.write(`imgsrv: cannot listen on ${config.host}:${config.port}: ${err.code}\n`);
      process.exit(1);
    }
    throw err;
  });
  if (bootstrap.plaintext) {
    say('imgsrv created principal "admin" (roles auth-manager, content-writer). Its API token is shown only this once:');
    say(`  export TOKEN=${bootstrap.plaintext}`);
  } else if (bootstrap.created) {
    say('imgsrv created principal "admin" (roles auth-manager, content-writer) with the token from IMGSRV_BOOTSTRAP_TOKEN');
  } else if (bootstrap.renewed) {
    say('imgsrv renewed the expired bootstrap token from IMGSRV_BOOTSTRAP_TOKEN');
  }
  say(`imgsrv ${jobsLine(jobs)}`);
  // Printed last: once this line is out, the server is fully started.
  say(`imgsrv listening on ${url}`);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal }, 'shutting down');
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
}
