import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { isMediaType } from '../../domain/media-type.ts';

/**
 * The OpenAPI file is the schema: request bodies and path parameters are validated against it
 * (ajv, JSON Schema 2020-12, as OpenAPI 3.1 specifies), routes take their method and path from
 * it by operationId, and tests check every response against it.
 */
const SCHEMA_ID = 'imgsrv';
const METHODS = ['get', 'head', 'post', 'put', 'delete', 'patch'] as const;
type JsonSchema = Record<string, unknown>;
// ajv-formats is CommonJS; its default export arrives wrapped under NodeNext resolution.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => Ajv2020;

export interface Operation {
  id: string;
  method: Uppercase<(typeof METHODS)[number]>;
  /** OpenAPI path template, e.g. `/v1/uploads/{upload_id}`. */
  path: string;
  /** The same path in fastify's syntax, e.g. `/v1/uploads/:upload_id`. */
  url: string;
  /** True when the operation lists `bearerAuth` security. */
  secured: boolean;
  params?: JsonSchema;
  body?: { mediaType: string; schema?: JsonSchema };
  responses: Record<string, { headers: string[]; content?: { mediaType: string; schema?: JsonSchema } }>;
}

export interface Contract {
  yaml: string;
  json: string;
  operations: Map<string, Operation>;
  operation(id: string): Operation;
  /** Validator for JSON request bodies (no coercion; applies schema defaults). */
  bodyAjv: Ajv2020;
  /** Validator for path parameters (strings coerced to the declared types). */
  paramAjv: Ajv2020;
  /** Compiled validator of a JSON response body for an operation and status, if it has a schema. */
  responseValidator(operationId: string, status: number): ValidateFunction | undefined;
}

/** The served contract: its YAML text (served verbatim) and the same document parsed. */
export interface ContractSource {
  yaml: string;
  document: unknown;
}

export function loadContract({ yaml, document }: ContractSource): Contract {
  const doc = document as {
    paths: Record<string, Record<string, unknown>>;
    components: { schemas: Record<string, unknown>; parameters: Record<string, unknown>; responses: Record<string, unknown> };
  };
  const deref = <T>(node: unknown): T => {
    const ref = (node as { $ref?: string }).$ref;
    if (!ref) return node as T;
    const [, section, name] = /^#\/components\/(\w+)\/(.+)$/.exec(ref) ?? [];
    const target = (doc.components as Record<string, Record<string, unknown>>)[section!]?.[name!];
    if (!target) throw new Error(`unresolvable $ref ${ref}`);
    return deref<T>(target);
  };
  /** Rewrites component schema refs to point into the schema registered with ajv. */
  const absolute = (schema: unknown): JsonSchema =>
    JSON.parse(JSON.stringify(schema).replace(/"#\/components\/schemas\//g, `"${SCHEMA_ID}#/$defs/`)) as JsonSchema;

  const makeAjv = (options: { coerceTypes: boolean; useDefaults: boolean; allErrors: boolean }) => {
    const ajv = new Ajv2020({ ...options, strict: true, allowUnionTypes: true });
    addFormats(ajv);
    ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
    ajv.addFormat('binary', true);
    ajv.addFormat('media-type', { type: 'string', validate: isMediaType });
    ajv.addKeyword({ keyword: 'x-imgsrv-extension', schemaType: 'boolean' });
    ajv.addSchema({ $id: SCHEMA_ID, $defs: JSON.parse(JSON.stringify(doc.components.schemas).replace(/"#\/components\/schemas\//g, '"#/$defs/')) as JsonSchema });
    return ajv;
  };
  // Bodies are at most IMGSRV_MAX_JSON_BODY, so reporting every violation is cheap and helps
  // (a misspelled field shows up both as missing and as unknown).
  const bodyAjv = makeAjv({ coerceTypes: false, useDefaults: true, allErrors: true });
  const paramAjv = makeAjv({ coerceTypes: true, useDefaults: false, allErrors: false });

  const operations = new Map<string, Operation>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method] as
        | { operationId: string; security?: Record<string, unknown>[]; parameters?: unknown[]; requestBody?: unknown; responses: Record<string, unknown> }
        | undefined;
      if (!op) continue;
      const pathParams = (op.parameters ?? []).map((p) => deref<{ name: string; in: string; schema: unknown }>(p)).filter((p) => p.in === 'path');
      const requestBody = op.requestBody ? deref<{ content: Record<string, { schema?: unknown }> }>(op.requestBody) : undefined;
      const [mediaType, media]: [string?, { schema?: unknown }?] = requestBody ? Object.entries(requestBody.content)[0]! : [];
      operations.set(op.operationId, {
        id: op.operationId,
        method: method.toUpperCase() as Operation['method'],
        path,
        url: path.replace(/\{(\w+)\}/g, ':$1'),
        secured: (op.security ?? []).some((s) => 'bearerAuth' in s),
        params: pathParams.length
          ? { type: 'object', properties: Object.fromEntries(pathParams.map((p) => [p.name, absolute(p.schema)])), required: pathParams.map((p) => p.name) }
          : undefined,
        body: mediaType ? { mediaType, schema: media?.schema && mediaType === 'application/json' ? absolute(media.schema) : undefined } : undefined,
        responses: Object.fromEntries(
          Object.entries(op.responses).map(([status, r]) => {
            const response = deref<{ headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> }>(r);
            const [contentType, content]: [string?, { schema?: unknown }?] = response.content ? Object.entries(response.content)[0]! : [];
            return [status, { headers: Object.keys(response.headers ?? {}), content: contentType ? { mediaType: contentType, schema: content?.schema ? absolute(content.schema) : undefined } : undefined }];
          }),
        ),
      });
    }
  }

  const compiled = new Map<string, ValidateFunction | undefined>();
  return {
    yaml,
    json: JSON.stringify(doc),
    operations,
    operation(id) {
      const op = operations.get(id);
      if (!op) throw new Error(`operation ${id} is not in the contract`);
      return op;
    },
    bodyAjv,
    paramAjv,
    responseValidator(operationId, status) {
      const key = `${operationId} ${status}`;
      if (!compiled.has(key)) {
        const content = this.operation(operationId).responses[String(status)]?.content;
        const json = content?.schema && /^application\/([\w.-]+\+)?json$/.test(content.mediaType);
        compiled.set(key, json ? bodyAjv.compile(content.schema!) : undefined);
      }
      return compiled.get(key);
    },
  };
}
