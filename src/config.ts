import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * All configuration, read from the environment once at start-up, validated, and frozen.
 * This is the only module that reads `process.env`. A bad value is a `ConfigError` whose
 * message is one line naming the variable; `main.ts` prints it and exits with status 2.
 */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** `display` is the URL without its password, for messages. */
  database: { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; display: string };
  bootstrapToken?: string;
  bootstrapTokenTtlSeconds: number;
  maxTokenLifetimeSeconds: number;
  tls?: { cert: string; key: string };
  publicUrl?: string;
  uploadTtlSeconds: number;
  maxPartBytes: number;
  maxJsonBytes: number;
  /** Pulls from the registry without credentials (`IMGSRV_OCI_ANONYMOUS_PULL`). */
  ociAnonymousPull: boolean;
  /** Largest blob a registry push may upload. */
  maxBlobBytes: number;
  jobLeaseSeconds: number;
  /** The job kinds this process runs, each with how many at once (`IMGSRV_JOBS`, `IMGSRV_JOB_CONCURRENCY[_KIND]`). */
  jobs: { kind: JobKindName; concurrency: number }[];
  /** Where verified bytes live: the data directory, or an S3-compatible bucket (`IMGSRV_BLOB_STORE`). */
  blobStore: { kind: 'fs' } | ({ kind: 's3' } & S3Settings);
  /** Image builds: the default Debian mirror (none when neither set nor found in apt's sources), workspaces, and the rootfs cache. */
  compose: { mirror?: string; workDir: string; cacheDir: string };
  logLevel: LogLevel;
  /** Crash-test pause points (testing only); see README. */
  failpoints: string[];
}

export interface S3Settings {
  bucket: string;
  region: string;
  /** A custom endpoint (Ceph RGW, MinIO, Garage, R2...); AWS's own when absent. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`) instead of virtual-host style (`bucket.endpoint/key`). */
  forcePathStyle: boolean;
  /** Key prefix of everything this server writes: empty, or ending with "/", so a bucket can be shared. */
  prefix: string;
  /** Both keys, or neither (the AWS SDK's default chain: environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** `IMGSRV_S3_REDIRECT=presigned`: downloads answer 307 to a presigned URL valid this long. */
  redirectTtlSeconds?: number;
}

/** The kinds of durable jobs there are; a process runs those `IMGSRV_JOBS` names. */
export const JOB_KIND_NAMES = ['ingest', 'publish', 'compose'] as const;
export type JobKindName = (typeof JOB_KIND_NAMES)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

/** Defaults of every setting that has one; the README table lists the same. */
const DEFAULTS = {
  IMGSRV_HOST: '127.0.0.1',
  IMGSRV_PORT: '8080',
  IMGSRV_DATA_DIR: './data',
  IMGSRV_BOOTSTRAP_TOKEN_TTL: String(365 * 86400),
  IMGSRV_MAX_TOKEN_LIFETIME: String(365 * 86400),
  IMGSRV_UPLOAD_TTL: '86400',
  IMGSRV_MAX_PART_SIZE: String(5 * 1024 ** 3),
  IMGSRV_MAX_JSON_BODY: String(1024 ** 2),
  IMGSRV_JOB_LEASE: '30',
  IMGSRV_OCI_ANONYMOUS_PULL: 'true',
  IMGSRV_MAX_BLOB_SIZE: String(1024 ** 4),
  IMGSRV_JOB_CONCURRENCY: '2',
  IMGSRV_JOBS: JOB_KIND_NAMES.join(','),
  IMGSRV_LOG_LEVEL: 'info',
  IMGSRV_BLOB_STORE: 'fs',
  IMGSRV_S3_REGION: 'us-east-1',
  IMGSRV_S3_REDIRECT: 'off',
  IMGSRV_S3_REDIRECT_TTL: '300',
} as const;
/** Settings without a default: unset means "not configured". */
const OPTIONAL = [
  'IMGSRV_DATABASE_URL',
  'IMGSRV_BOOTSTRAP_TOKEN',
  'IMGSRV_TLS_CERT',
  'IMGSRV_TLS_KEY',
  'IMGSRV_PUBLIC_URL',
  'IMGSRV_FAILPOINTS',
  'IMGSRV_COMPOSE_MIRROR',
  'IMGSRV_COMPOSE_WORK_DIR',
  'IMGSRV_COMPOSE_CACHE_DIR',
  'IMGSRV_S3_BUCKET',
  'IMGSRV_S3_ENDPOINT',
  'IMGSRV_S3_ACCESS_KEY_ID',
  'IMGSRV_S3_SECRET_ACCESS_KEY',
  'IMGSRV_S3_FORCE_PATH_STYLE',
  'IMGSRV_S3_PREFIX',
  ...JOB_KIND_NAMES.map((k) => `IMGSRV_JOB_CONCURRENCY_${k.toUpperCase()}` as const),
] as const;
type Setting = keyof typeof DEFAULTS | (typeof OPTIONAL)[number];
const KNOWN = new Set<string>([...Object.keys(DEFAULTS), ...OPTIONAL]);

/** Where the default compose mirror is read from when IMGSRV_COMPOSE_MIRROR is unset: the host's own apt sources. */
export const APT_SOURCES = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];

export function loadConfig(env: Env = process.env, aptSources: readonly string[] = APT_SOURCES): Config {
  function get(name: keyof typeof DEFAULTS): string;
  function get(name: Setting): string | undefined;
  function get(name: Setting) {
    const v = env[name]?.trim();
    // IMGSRV_JOBS= (empty) means no jobs at all, not the default.
    if (name === 'IMGSRV_JOBS' && v === '') return '';
    return v ? v : (DEFAULTS as Record<string, string>)[name];
  }
  const int = (name: Setting, min: number, max = Number.MAX_SAFE_INTEGER, fallback?: number) => {
    const raw = get(name) ?? String(fallback);
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw new ConfigError(`${name}=${JSON.stringify(raw)} is not an integer between ${min} and ${max}`);
    }
    return Number(raw);
  };

  const bool = (name: Setting, fallback?: boolean) => {
    const raw = (get(name) ?? String(fallback)).toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(raw)) return true;
    if (['false', '0', 'no', 'off'].includes(raw)) return false;
    throw new ConfigError(`${name}=${JSON.stringify(raw)} is not true or false`);
  };

  const dataDir = resolve(get('IMGSRV_DATA_DIR'));
  const logLevel = get('IMGSRV_LOG_LEVEL') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`IMGSRV_LOG_LEVEL=${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);

  const config: Config = {
    host: get('IMGSRV_HOST'),
    port: int('IMGSRV_PORT', 0, 65535),
    dataDir,
    database: parseDatabaseUrl(get('IMGSRV_DATABASE_URL'), dataDir),
    bootstrapToken: parseBootstrapToken(get('IMGSRV_BOOTSTRAP_TOKEN')),
    bootstrapTokenTtlSeconds: int('IMGSRV_BOOTSTRAP_TOKEN_TTL', 60),
    maxTokenLifetimeSeconds: int('IMGSRV_MAX_TOKEN_LIFETIME', 60),
    tls: readTls(get('IMGSRV_TLS_CERT'), get('IMGSRV_TLS_KEY')),
    publicUrl: parsePublicUrl(get('IMGSRV_PUBLIC_URL')),
    uploadTtlSeconds: int('IMGSRV_UPLOAD_TTL', 1),
    maxPartBytes: int('IMGSRV_MAX_PART_SIZE', 1),
    maxJsonBytes: int('IMGSRV_MAX_JSON_BODY', 1024, 64 * 1024 ** 2),
    jobLeaseSeconds: int('IMGSRV_JOB_LEASE', 1, 3600),
    ociAnonymousPull: bool('IMGSRV_OCI_ANONYMOUS_PULL'),
    maxBlobBytes: int('IMGSRV_MAX_BLOB_SIZE', 1),
    // An image build uses about two cores at its peak: one at a time unless asked otherwise.
    jobs: parseJobs(get('IMGSRV_JOBS'), (kind) => int(`IMGSRV_JOB_CONCURRENCY_${kind.toUpperCase()}` as Setting, 1, 64, kind === 'compose' ? 1 : int('IMGSRV_JOB_CONCURRENCY', 1, 64))),
    blobStore: parseBlobStore(get, bool, () => int('IMGSRV_S3_REDIRECT_TTL', 10, 7 * 86400)),
    compose: {
      mirror: parseMirror(get('IMGSRV_COMPOSE_MIRROR')) ?? mirrorOfAptSources(aptSources),
      workDir: resolve(get('IMGSRV_COMPOSE_WORK_DIR') ?? resolve(dataDir, 'compose', 'work')),
      cacheDir: resolve(get('IMGSRV_COMPOSE_CACHE_DIR') ?? resolve(dataDir, 'compose', 'cache')),
    },
    logLevel,
    failpoints: (get('IMGSRV_FAILPOINTS') ?? '').split(',').map((f) => f.trim()).filter(Boolean),
  };
  return Object.freeze(config);
}

/** IMGSRV_* names in the environment that the server does not know (likely typos). */
export const unknownSettings = (env: Env = process.env): string[] =>
  Object.keys(env).filter((k) => k.startsWith('IMGSRV_') && !KNOWN.has(k));

function parseJobs(raw: string, concurrency: (kind: JobKindName) => number): Config['jobs'] {
  const kinds = raw.split(',').map((k) => k.trim()).filter(Boolean);
  for (const kind of kinds) {
    if (!(JOB_KIND_NAMES as readonly string[]).includes(kind)) throw new ConfigError(`IMGSRV_JOBS names ${JSON.stringify(kind)}, which is not one of ${JOB_KIND_NAMES.join(', ')}`);
  }
  return [...new Set(kinds as JobKindName[])].map((kind) => ({ kind, concurrency: concurrency(kind) }));
}

function parseBlobStore(get: (name: Setting) => string | undefined, bool: (name: Setting, fallback?: boolean) => boolean, redirectTtl: () => number): Config['blobStore'] {
  const kind = get('IMGSRV_BLOB_STORE');
  const redirect = get('IMGSRV_S3_REDIRECT');
  if (redirect !== 'off' && redirect !== 'presigned') throw new ConfigError(`IMGSRV_S3_REDIRECT=${JSON.stringify(redirect)} is not off or presigned`);
  if (kind === 'fs' && redirect === 'presigned') throw new ConfigError('IMGSRV_S3_REDIRECT=presigned needs IMGSRV_BLOB_STORE=s3');
  if (kind === 'fs') return { kind: 'fs' };
  if (kind !== 's3') throw new ConfigError(`IMGSRV_BLOB_STORE=${JSON.stringify(kind)} is not fs or s3`);
  const bucket = get('IMGSRV_S3_BUCKET');
  // DNS-compatible bucket names (the S3 rules both addressing styles accept).
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new ConfigError(`IMGSRV_S3_BUCKET=${JSON.stringify(bucket ?? '')} is not a bucket name (3-63 lowercase letters, digits, "." and "-"); IMGSRV_BLOB_STORE=s3 needs one`);
  const endpoint = get('IMGSRV_S3_ENDPOINT');
  if (endpoint !== undefined && !/^https?:\/\/[^/?#@]+\/?$/.test(endpoint)) throw new ConfigError(`IMGSRV_S3_ENDPOINT=${JSON.stringify(endpoint)} must be an http(s) URL with no credentials, path, query or fragment`);
  const region = get('IMGSRV_S3_REGION')!;
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(region)) throw new ConfigError(`IMGSRV_S3_REGION=${JSON.stringify(region)} is not a region name (lowercase letters, digits and "-", like us-east-1)`);
  const accessKeyId = get('IMGSRV_S3_ACCESS_KEY_ID');
  const secretAccessKey = get('IMGSRV_S3_SECRET_ACCESS_KEY');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) throw new ConfigError('IMGSRV_S3_ACCESS_KEY_ID and IMGSRV_S3_SECRET_ACCESS_KEY go together: set both, or neither for the AWS SDK default credential chain');
  const rawPrefix = get('IMGSRV_S3_PREFIX') ?? '';
  if (!/^[A-Za-z0-9!_.*'()/-]*$/.test(rawPrefix) || rawPrefix.startsWith('/') || rawPrefix.includes('//') || rawPrefix.length > 256) throw new ConfigError(`IMGSRV_S3_PREFIX=${JSON.stringify(rawPrefix)} must be a key prefix of letters, digits and !_.*'()/- (no leading "/", no "//", at most 256 characters)`);
  return {
    kind: 's3',
    bucket,
    region,
    ...(endpoint !== undefined && { endpoint: endpoint.replace(/\/$/, '') }),
    // A custom endpoint (Ceph RGW, MinIO, ...) rarely has wildcard DNS for virtual-host style.
    forcePathStyle: bool('IMGSRV_S3_FORCE_PATH_STYLE', endpoint !== undefined),
    prefix: rawPrefix === '' || rawPrefix.endsWith('/') ? rawPrefix : `${rawPrefix}/`,
    ...(accessKeyId !== undefined && { credentials: { accessKeyId, secretAccessKey: secretAccessKey! } }),
    ...(redirect === 'presigned' && { redirectTtlSeconds: redirectTtl() }),
  };
}

function parseMirror(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`IMGSRV_COMPOSE_MIRROR=${JSON.stringify(raw)} is not an absolute URL`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.search || url.hash) throw new ConfigError(`IMGSRV_COMPOSE_MIRROR=${JSON.stringify(raw)} must be an http(s) URL of a Debian archive, without query or fragment`);
  return url.href.replace(/\/+$/, '');
}

/** The first Debian archive the host's apt uses (deb822 `URIs:` of a stanza without `-security` suites, or a one-line `deb` source). */
export function mirrorOfAptSources(files: readonly string[]): string | undefined {
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/im.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/im.exec(stanza)?.[1] ?? '';
      if (uri && /^https?:/.test(uri) && !/-security\b/.test(suites)) return uri.replace(/\/+$/, '');
    }
    const line = /^deb\s+(?:\[[^\]]*\]\s+)?(https?:\S+)\s+(\S+)/m.exec(text);
    if (line && !line[2]!.endsWith('-security')) return line[1]!.replace(/\/+$/, '');
  }
  return undefined;
}

function parseDatabaseUrl(raw: string | undefined, dataDir: string): Config['database'] {
  if (raw === undefined) return { kind: 'sqlite', file: resolve(dataDir, 'metadata.sqlite') };
  if (/^postgres(ql)?:\/\//.test(raw)) return parsePostgresUrl(raw);
  const m = /^(?:sqlite|file):(?:\/\/)?(.+)$/.exec(raw);
  if (m) return { kind: 'sqlite', file: resolve(m[1]!) };
  throw new ConfigError(`IMGSRV_DATABASE_URL must be sqlite:<path> or postgres://..., not ${JSON.stringify(raw.replace(/\/\/[^@/]*@/, '//***@'))}`);
}

function parsePostgresUrl(raw: string): Config['database'] {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('IMGSRV_DATABASE_URL is not a valid postgres:// URL');
  }
  if (url.password) url.password = '***';
  for (const secret of ['password', 'sslpassword']) if (url.searchParams.has(secret)) url.searchParams.set(secret, '***');
  const display = url.href;
  if (!url.hostname && !url.searchParams.has('host')) throw new ConfigError(`IMGSRV_DATABASE_URL=${display} names no host`);
  return { kind: 'postgres', url: raw, display };
}

function parseBootstrapToken(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^[\x21-\x7e]+$/.test(raw) || raw.length > 512) {
    throw new ConfigError('IMGSRV_BOOTSTRAP_TOKEN must be 1..512 visible ASCII characters without spaces');
  }
  return raw;
}

function readTls(certFile: string | undefined, keyFile: string | undefined): Config['tls'] {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new ConfigError(`IMGSRV_TLS_CERT and IMGSRV_TLS_KEY must be set together (only ${certFile ? 'IMGSRV_TLS_CERT' : 'IMGSRV_TLS_KEY'} is set)`);
  }
  const read = (name: string, file: string, marker: string) => {
    let pem: string;
    try {
      pem = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${name}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!pem.includes(marker)) throw new ConfigError(`${name}: ${file} is not a PEM file containing ${marker.replace(/-/g, '').trim()}`);
    return pem;
  };
  return { cert: read('IMGSRV_TLS_CERT', certFile, '-----BEGIN CERTIFICATE-----'), key: read('IMGSRV_TLS_KEY', keyFile, 'PRIVATE KEY-----') };
}

function parsePublicUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`IMGSRV_PUBLIC_URL=${JSON.stringify(raw)} is not an absolute URL`);
  }
  if (!['http:', 'https:'].includes(url.protocol) || url.search || url.hash || url.username) {
    throw new ConfigError(`IMGSRV_PUBLIC_URL=${JSON.stringify(raw)} must be an http(s) URL without credentials, query or fragment`);
  }
  return url.href.replace(/\/+$/, '');
}
