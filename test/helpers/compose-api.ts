import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { parse } from 'yaml';
import { pinnedFetch } from './client.ts';
import { REPO_ROOT } from './server.ts';

export const COMPOSE_API = '/api/image-builder-composer/v2';

// ajv-formats is CommonJS; its default export arrives wrapped under NodeNext resolution.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

type Doc = { paths: Record<string, Record<string, { responses: Record<string, Response> }>>; components: { responses: Record<string, Response> } };
type Response = { $ref?: string; content?: Record<string, { schema?: unknown }> };

/** The compose API's served document (openapi/compose-v2.yaml), with a validator per schema. */
function composeContract() {
  const doc = parse(readFileSync(join(REPO_ROOT, 'openapi/compose-v2.yaml'), 'utf8')) as Doc;
  // OpenAPI 3.0 schemas: draft-07-like, plus keywords (example, nullable, x-*) ajv need not know.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat('url', true);
  ajv.addSchema(doc as object, 'compose.json');
  const validators = new Map<string, ValidateFunction>();
  const validator = (ref: string) => {
    let v = validators.get(ref);
    if (!v) validators.set(ref, (v = ajv.compile({ $ref: `compose.json${ref}` })));
    return v;
  };
  const templates = Object.keys(doc.paths).map((path) => ({ path, pattern: new RegExp(`^${COMPOSE_API}${path.replace(/\{\w+\}/g, '[^/]+')}$`) }));
  return { doc, validator, templates };
}
let contract: ReturnType<typeof composeContract> | undefined;

export interface ComposeResponse {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

/**
 * Checks a compose API answer against its document: the status is documented for the
 * operation (404/405 for paths and methods it does not have), errors are the seed's Error
 * object with a catalogue code, and JSON bodies validate against the documented schema.
 */
export function assertComposeContract(method: string, path: string, res: ComposeResponse): void {
  contract ??= composeContract();
  const where = `${method} ${path} → ${res.status}`;
  const type = res.headers.get('content-type') ?? '';
  if (res.status >= 400 && method !== 'HEAD') {
    assert.match(type, /^application\/json/, `${where}: errors are application/json, got ${type}`);
    assert.equal(contract.validator('#/components/schemas/Error')(res.json), true, `${where}: not an Error object: ${res.text}`);
    assert.equal(res.json.kind, 'Error', where);
    assert.equal(res.json.code, `IMGSRV-COMPOSE-${res.json.id}`, where);
    assert.equal(res.json.href, `${COMPOSE_API}/errors/${res.json.id}`, where);
    assert.equal(res.json.operation_id, res.headers.get('x-request-id'), `${where}: operation_id is the request id`);
  }
  const template = contract.templates.find((t) => t.pattern.test(path));
  const operation = template && contract.doc.paths[template.path]![(method === 'HEAD' ? 'GET' : method).toLowerCase()];
  if (!operation) {
    assert.ok(res.status === 404 || res.status === 405, `${where}: not an operation of the document, so only 404/405`);
    return;
  }
  let response = operation.responses[String(res.status)];
  assert.ok(response, `${where}: status ${res.status} is not documented`);
  if (response.$ref) response = contract.doc.components.responses[response.$ref.split('/').at(-1)!]!;
  if (method === 'HEAD' || !response.content) return;
  const mediaType = type.split(';')[0]!.trim();
  assert.ok(response.content[mediaType], `${where}: content-type ${type} is not documented (${Object.keys(response.content).join(', ')})`);
  const schema = response.content[mediaType]!.schema as { $ref?: string } | undefined;
  if (mediaType === 'application/json' && schema?.$ref) {
    const validate = contract.validator(schema.$ref);
    assert.ok(validate(res.json), `${where}: body violates ${schema.$ref}: ${JSON.stringify(validate.errors)}\n${res.text.slice(0, 2000)}`);
  }
}

/** A client of the compose API on a running server, every answer checked against its document; `ca` pins a self-signed certificate. */
export function composeClient(base: { url: string; token: string; ca?: string }) {
  const send = base.ca ? pinnedFetch(base.ca) : fetch;
  const request = async (method: string, path: string, opts: { json?: unknown; body?: string; headers?: Record<string, string>; token?: string | null } = {}): Promise<ComposeResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    const token = opts.token === undefined ? base.token : opts.token;
    if (token !== null) headers.authorization ??= `Bearer ${token}`;
    if (opts.json !== undefined) headers['content-type'] ??= 'application/json';
    const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.body;
    const res = await send(`${base.url}${COMPOSE_API}${path}`, { method, headers, body });
    const text = await res.text();
    const json = /json/.test(res.headers.get('content-type') ?? '') && text.length > 0 ? JSON.parse(text) : undefined;
    const result = { status: res.status, headers: res.headers, json, text };
    assertComposeContract(method, `${COMPOSE_API}${path.split('?')[0]}`, result);
    return result;
  };
  return {
    request,
    get: (path: string, opts?: { headers?: Record<string, string>; token?: string | null }) => request('GET', path, opts),
    post: (path: string, json: unknown, opts?: { token?: string | null }) => request('POST', path, { ...opts, json }),
    delete: (path: string) => request('DELETE', path),
  };
}

export type ComposeClient = ReturnType<typeof composeClient>;
