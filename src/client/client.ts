import type { components } from './wire.ts';

/** The contract's schemas, as the server sends and accepts them. */
export type Schemas = components['schemas'];
export type UploadSession = Schemas['UploadSession'];
export type PublishJob = Schemas['PublishJob'];
export type Problem = Schemas['Problem'] & { code?: string };

/** A request body the client sends: bytes in memory, or a stream of them. */
export type Body = string | Uint8Array | ReadableStream<Uint8Array> | Blob;

/** An answer of the server that is an error: its RFC 9457 problem document, and the status. */
export class ClientError extends Error {
  override name = 'ClientError';
  readonly status: number;
  readonly problem?: Problem;

  constructor(status: number, problem: Problem | undefined, what: string) {
    super(`${what}: ${status} ${problem?.code ?? ''} ${problem?.detail ?? ''}`.trim());
    this.status = status;
    this.problem = problem;
  }

  /** The problem's stable code (`digest_unknown`, `upload_expired`, ...). */
  get code(): string | undefined {
    return this.problem?.code;
  }
}

export interface ClientOptions {
  /** The server's URL, e.g. `https://images.example.com` (no trailing slash needed). */
  baseUrl: string;
  /** An imgsrv API token or an OIDC JWT, sent as `Authorization: Bearer`. */
  token?: string;
  /** The fetch to use (a pinned-CA dispatcher, a test's checking wrapper); the global one by default. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  json?: unknown;
  body?: Body;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Statuses that are answers, not errors (default: any 2xx). */
  ok?: readonly number[];
}

/**
 * The raw request of the typed client: JSON in, JSON out, a `ClientError` carrying the problem
 * for every error status. The typed operations in `operations.ts` are built on it.
 */
export function createTransport(opts: ClientOptions) {
  const base = opts.baseUrl.replace(/\/+$/, '');
  const send = opts.fetch ?? fetch;
  return async function request<T>(method: string, path: string, r: RequestOptions = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...r.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body = r.body;
    if (r.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(r.json);
    }
    const res = await send(`${base}${path}`, { method, headers, body, signal: r.signal, ...(body instanceof ReadableStream && { duplex: 'half' }) } as RequestInit);
    const type = res.headers.get('content-type') ?? '';
    const text = method === 'HEAD' ? '' : await res.text();
    const parsed = /json/.test(type) && text ? (JSON.parse(text) as unknown) : undefined;
    const ok = r.ok ? r.ok.includes(res.status) : res.ok;
    if (!ok) throw new ClientError(res.status, parsed as Problem | undefined, `${method} ${path}`);
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
}

export type Transport = ReturnType<typeof createTransport>;
