import type { FastifyReply, FastifyRequest } from 'fastify';
import { COMPOSE_ERRORS, catalogueError, type CatalogueError } from '../../domain/compose.ts';
import type { DomainError, ErrorKind } from '../../domain/errors.ts';
import { STATUS_OF_KIND } from '../v1/problem.ts';

export const COMPOSE_PREFIX = '/api/image-builder-composer/v2';

/** The seed's Error object: a catalogue entry, what exactly went wrong, and the request it happened to. */
export interface ComposeApiError {
  id: string;
  kind: 'Error';
  href: string;
  code: string;
  reason: string;
  operation_id: string;
}

export const errorBody = (entry: CatalogueError, operationId: string, reason = entry.reason): ComposeApiError => ({
  id: String(entry.id),
  kind: 'Error',
  href: `${COMPOSE_PREFIX}/errors/${entry.id}`,
  code: `IMGSRV-COMPOSE-${entry.id}`,
  reason,
  operation_id: operationId,
});

/** The catalogue entry of errors that do not name one themselves (an expired token, a database outage). */
const ENTRY_OF_KIND: Partial<Record<ErrorKind, string>> = {
  invalid: 'invalid_request',
  unauthenticated: 'unauthenticated',
  forbidden: 'forbidden',
  payload_too_large: 'body_too_large',
  unavailable: 'unavailable',
};

/** A service error as the catalogue entry its code names (or its kind implies), with its status. */
export function composeErrorOf(error: DomainError): { status: number; entry: CatalogueError } {
  const named = COMPOSE_ERRORS.find((e) => e.code === error.code);
  return { status: STATUS_OF_KIND[error.kind], entry: named ?? catalogueError(ENTRY_OF_KIND[error.kind] ?? 'internal') };
}

export function sendComposeError(request: FastifyRequest, reply: FastifyReply, status: number, entry: CatalogueError, reason?: string, headers: Record<string, string> = {}): FastifyReply {
  return reply
    .code(status)
    .headers({ ...headers, 'cache-control': 'no-store' })
    .type('application/json')
    .send(errorBody(entry, request.id, reason === undefined ? entry.reason : `${entry.reason}: ${reason}`));
}
