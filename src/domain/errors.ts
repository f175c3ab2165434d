/**
 * The one error type services and stores throw. `kind` decides the HTTP status (only
 * `http/problem.ts` maps it); `code` is a stable machine-readable name; `detail` is a
 * human-readable sentence that never contains secrets or internals.
 */
export const ERROR_KINDS = [
  'invalid',
  'unauthenticated',
  'forbidden',
  'not_found',
  'conflict',
  'precondition_failed',
  'payload_too_large',
  'range_not_satisfiable',
  'insufficient_storage',
  'unavailable',
  'internal',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export class DomainError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly detail: string;

  constructor(kind: ErrorKind, code: string, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = 'DomainError';
    this.kind = kind;
    this.code = code;
    this.detail = detail;
  }
}

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;
