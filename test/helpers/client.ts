import assert from 'node:assert/strict';
import { Agent, fetch as undiciFetch } from 'undici';
import type { Contract, Operation } from '../../src/http/v1/contract.ts';
import { createImgsrvClient } from '../../src/client/operations.ts';
import { servedContract } from './contract.ts';

/**
 * Transport-level statuses any operation may answer with although the contract does not list
 * them per operation: a JSON body over the size limit, a wrong media type, failures.
 */
const GENERIC_PROBLEMS = new Set([413, 415, 500, 503]);

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON body (problem or resource), if the response had one. */
  json: any;
  bytes: Buffer;
  operationId?: string;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  /** JSON body; sets Content-Type: application/json unless headers say otherwise. */
  json?: unknown;
  /** Raw body. */
  body?: Buffer | string | Uint8Array;
  /** Bearer token; `null` sends no Authorization header. Defaults to the client's token. */
  token?: string | null;
}

let contract: Contract | undefined;
const matchers = () => {
  contract ??= servedContract();
  return [...contract.operations.values()].map((op) => ({
    op,
    pattern: new RegExp(`^${op.path.replace(/\{\w+\}/g, '[^/]+')}$`),
  }));
};

function findOperation(method: string, path: string): Operation | undefined {
  const candidates = matchers().filter((m) => m.op.method === method && m.pattern.test(path));
  // HEAD of a GET-only resource is that GET without its body (RFC 9110 §9.3.2).
  if (method === 'HEAD' && candidates.length === 0) return findOperation('GET', path);
  // Prefer the most specific template (fewest parameters) when several match.
  candidates.sort((a, b) => (a.op.path.match(/\{/g)?.length ?? 0) - (b.op.path.match(/\{/g)?.length ?? 0));
  return candidates[0]?.op;
}

/**
 * Checks a response against the contract: the status is documented for the operation (or is a
 * generic problem), the documented headers are present, error bodies are RFC 9457 problems with
 * `application/problem+json`, and JSON bodies validate against the schema for that status.
 */
export function assertMatchesContract(method: string, path: string, res: ApiResponse, conditional = false): void {
  const where = `${method} ${path} → ${res.status}`;
  const type = res.headers.get('content-type') ?? '';
  if (res.status >= 400) {
    assert.match(type, /^application\/problem\+json/, `${where}: errors must be application/problem+json, got ${type}`);
  }
  if (res.status >= 400 && method !== 'HEAD') {
    assert.equal(res.json?.status, res.status, `${where}: problem.status must equal the HTTP status`);
    assert.equal(typeof res.json?.title, 'string', `${where}: problem needs a title`);
    assert.ok(typeof res.json?.detail === 'string' && res.json.detail.length > 0, `${where}: problem needs a detail`);
    assert.equal(res.json?.type, 'about:blank', `${where}: problem type`);
  }
  const op = findOperation(method, path);
  if (!op) {
    assert.ok(res.status === 404 || res.status === 405, `${where}: not a contract operation, so only 404/405 are expected`);
    return;
  }
  res.operationId = op.id;
  const documented = op.responses[String(res.status)];
  if (!documented) {
    // RFC 9110 §13.1: any GET may be answered 304 when the request made it conditional.
    if (res.status === 304 && conditional && method === 'GET') return;
    assert.ok(GENERIC_PROBLEMS.has(res.status), `${where}: status ${res.status} is not documented for ${op.id}`);
    return;
  }
  for (const name of documented.headers) {
    if (name === 'Content-Length' && (method === 'HEAD' || res.status === 304)) continue;
    assert.ok(res.headers.has(name), `${where}: documented header ${name} is missing`);
  }
  // Opaque bytes (`format: binary`) are served with their recorded media type (issue: "a
  // Content-Type from the recorded media type"); every other body must match exactly.
  const binary = documented.content?.schema?.format === 'binary';
  if (documented.content && method !== 'HEAD' && !binary) {
    assert.ok(type.startsWith(documented.content.mediaType), `${where}: content-type ${type}, contract says ${documented.content.mediaType}`);
  }
  const validate = contract!.responseValidator(op.id, res.status);
  if (validate && method !== 'HEAD') {
    assert.ok(validate(res.json), `${where}: body violates the contract: ${JSON.stringify(validate.errors)}\n${JSON.stringify(res.json)}`);
  }
}

/**
 * An HTTP client for a running server that validates every response against the contract.
 * `ca` pins a self-signed certificate (PEM) for a server speaking HTTPS.
 */
export function apiClient(base: { url: string; token: string; ca?: string }) {
  const send = base.ca ? pinnedFetch(base.ca) : fetch;
  const request = async (method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? base.token : opts.token;
    if (token !== null) headers.authorization ??= `Bearer ${token}`;
    let body: string | Uint8Array | undefined;
    if (opts.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      body = typeof opts.body === "string" ? opts.body : new Uint8Array(opts.body);
    }
    const res = await send(`${base.url}${path}`, { method, headers, body });
    const bytes = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type') ?? '';
    const json = /json/.test(type) && bytes.length > 0 ? JSON.parse(bytes.toString('utf8')) : undefined;
    const result: ApiResponse = { status: res.status, headers: res.headers, json, bytes };
    assertMatchesContract(method, path.split('?')[0]!, result, 'if-none-match' in headers || 'if-modified-since' in headers);
    return result;
  };
  return {
    base,
    /** The project's typed client (src/client) on this server, every response checked against the contract. */
    client: () => createImgsrvClient({ baseUrl: base.url, token: base.token, fetch: contractFetch(send) }),
    request,
    get: (path: string, opts?: RequestOptions) => request('GET', path, opts),
    head: (path: string, opts?: RequestOptions) => request('HEAD', path, opts),
    post: (path: string, json?: unknown, opts?: RequestOptions) => request('POST', path, { ...opts, json }),
    put: (path: string, opts?: RequestOptions) => request('PUT', path, opts),
    delete: (path: string, opts?: RequestOptions) => request('DELETE', path, opts),
  };
}

export type ApiClient = ReturnType<typeof apiClient>;

/** fetch whose every response is checked against the contract, as `apiClient`'s are. */
export function contractFetch(send: typeof fetch = fetch): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await send(input, init);
    const bytes = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type') ?? '';
    const json = /json/.test(type) && bytes.length > 0 ? JSON.parse(bytes.toString('utf8')) : undefined;
    const url = new URL(String(input instanceof Request ? input.url : input));
    assertMatchesContract(init?.method ?? 'GET', url.pathname, { status: res.status, headers: res.headers, json, bytes });
    return new Response(res.status === 204 || res.status === 304 ? null : bytes, { status: res.status, headers: res.headers });
  }) as typeof fetch;
}

/** fetch that trusts exactly one CA certificate. */
export function pinnedFetch(ca: string): typeof fetch {
  const dispatcher = new Agent({ connect: { ca } });
  return ((url: string, init: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch;
}
