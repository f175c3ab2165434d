import type { FastifyReply } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { ErrorObject } from 'ajv';
import type { ErrorKind } from '../../domain/errors.ts';

/** The one table from error kind to HTTP status. */
export const STATUS_OF_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  payload_too_large: 413,
  range_not_satisfiable: 416,
  insufficient_storage: 507,
  unavailable: 503,
  internal: 500,
};

/** RFC 9457 problem details. The contract emits `about:blank` for every problem type. */
export interface Problem {
  type: 'about:blank';
  title: string;
  status: number;
  detail: string;
  /** Stable machine-readable name of the error (extension member). */
  code: string;
  /** Per-field validation messages (extension member). */
  errors?: { location: string; pointer: string; message: string }[];
}

export function problem(status: number, code: string, detail: string, extra?: Pick<Problem, 'errors'>): Problem {
  return { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail, code, ...extra };
}

export function sendProblem(reply: FastifyReply, p: Problem, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(p.status).headers(headers).type('application/problem+json').send(p);
}

/** Formats of the served contract whose ajv message ("must match format ...") says too little. */
const FORMAT_MESSAGES: Record<string, string> = {
  'media-type': 'is not a media type (RFC 6838 type/subtype, optionally with ; name=value parameters, in ASCII)',
};

/** What a violated keyword means, where ajv's own message says too little. */
function explain(e: ErrorObject): string {
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'format' && FORMAT_MESSAGES[String(params.format)]) return FORMAT_MESSAGES[String(params.format)]!;
  if (e.keyword === 'maxLength') return `is longer than allowed: at most ${String(params.limit)} characters`;
  return e.message ?? 'is invalid';
}

const LOCATION: Record<string, string> = { body: 'request body', params: 'path parameter', querystring: 'query parameter', headers: 'header' };

/** A schema violation as a 400 problem whose detail names the offending field. */
export function validationProblem(errors: ErrorObject[], context: string): Problem {
  const where = LOCATION[context] ?? context;
  const described = errors.map((e) => {
    const field = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const params = e.params as Record<string, unknown>;
    let message: string;
    if (e.keyword === 'required') message = `${where}: missing required field "${[field, params.missingProperty].filter(Boolean).join('.')}"`;
    else if (e.keyword === 'additionalProperties') message = `${where}: unknown field "${[field, params.additionalProperty].filter(Boolean).join('.')}"`;
    else if (!field) message = `${where} ${e.message ?? 'is invalid'}`;
    else message = `${where}${context === 'body' ? ' field' : ''} "${field}" ${explain(e)}`;
    return { location: context, pointer: e.instancePath || '/', message };
  });
  return problem(400, 'validation_failed', described.map((d) => d.message).join('; '), { errors: described });
}
