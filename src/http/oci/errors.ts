import type { FastifyReply } from 'fastify';
import type { DomainError, ErrorKind } from '../../domain/errors.ts';

/**
 * The OCI surface's error envelope (`{"errors":[{"code","message","detail"}]}`, spec section
 * "Error Codes") and the one table from a `DomainError` to its status and code, beside
 * `v1/problem.ts` for the contract API. Codes first (they say more), then kinds.
 */
export interface OciError {
  status: number;
  code: string;
}

const BY_CODE: Record<string, OciError> = {
  name_invalid: { status: 400, code: 'NAME_INVALID' },
  name_unknown: { status: 404, code: 'NAME_UNKNOWN' },
  blob_unknown: { status: 404, code: 'BLOB_UNKNOWN' },
  blob_not_found: { status: 404, code: 'BLOB_UNKNOWN' },
  blob_upload_unknown: { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  upload_not_found: { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  upload_not_open: { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  upload_expired: { status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  upload_changed: { status: 400, code: 'BLOB_UPLOAD_INVALID' },
  chunk_out_of_order: { status: 416, code: 'BLOB_UPLOAD_INVALID' },
  chunk_in_flight: { status: 416, code: 'BLOB_UPLOAD_INVALID' },
  invalid_content_range: { status: 400, code: 'BLOB_UPLOAD_INVALID' },
  digest_invalid: { status: 400, code: 'DIGEST_INVALID' },
  digest_mismatch: { status: 400, code: 'DIGEST_INVALID' },
  digest_unsupported: { status: 400, code: 'DIGEST_INVALID' },
  invalid_digest: { status: 400, code: 'DIGEST_INVALID' },
  size_mismatch: { status: 400, code: 'SIZE_INVALID' },
  part_size_mismatch: { status: 400, code: 'SIZE_INVALID' },
  part_too_large: { status: 413, code: 'SIZE_INVALID' },
  blob_too_large: { status: 413, code: 'SIZE_INVALID' },
  manifest_unknown: { status: 404, code: 'MANIFEST_UNKNOWN' },
  manifest_invalid: { status: 400, code: 'MANIFEST_INVALID' },
  manifest_too_large: { status: 413, code: 'SIZE_INVALID' },
  manifest_blob_unknown: { status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  denied: { status: 403, code: 'DENIED' },
  unsupported: { status: 405, code: 'UNSUPPORTED' },
};

const BY_KIND: Record<ErrorKind, OciError> = {
  invalid: { status: 400, code: 'UNSUPPORTED' },
  unauthenticated: { status: 401, code: 'UNAUTHORIZED' },
  forbidden: { status: 403, code: 'DENIED' },
  not_found: { status: 404, code: 'NAME_UNKNOWN' },
  conflict: { status: 409, code: 'UNSUPPORTED' },
  precondition_failed: { status: 400, code: 'BLOB_UPLOAD_INVALID' },
  payload_too_large: { status: 413, code: 'SIZE_INVALID' },
  range_not_satisfiable: { status: 416, code: 'BLOB_UPLOAD_INVALID' },
  insufficient_storage: { status: 507, code: 'UNKNOWN' },
  unavailable: { status: 503, code: 'UNAVAILABLE' },
  internal: { status: 500, code: 'UNKNOWN' },
};

export const ociErrorOf = (e: DomainError): OciError => BY_CODE[e.code] ?? BY_KIND[e.kind];

/** Every error of the surface: JSON in the spec's envelope, with the status it maps to. */
export function sendOciError(reply: FastifyReply, error: OciError & { message: string; detail?: unknown }, headers: Record<string, string> = {}): FastifyReply {
  const body = Buffer.from(JSON.stringify({ errors: [{ code: error.code, message: error.message, detail: error.detail ?? null }] }));
  return reply.code(error.status).headers(headers).header('content-type', 'application/json').send(body);
}
