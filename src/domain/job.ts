import { DomainError } from './errors.ts';

/**
 * Durable jobs are rows in the metadata store, claimed with a lease that the runner
 * extends while it works. A job whose lease lapses (its process died) is claimed again,
 * so every handler must be safe to re-run from the start.
 */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface Job {
  id: string;
  kind: string;
  /** The payload as stored (JSON); a job kind's codec reads it. */
  payload: unknown;
  state: JobState;
  /** Number of times the job has been claimed, including the current run. */
  attempts: number;
  leaseOwner?: string;
  leaseExpiresAt?: Date;
  runAfter: Date;
  lastError?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewJob {
  id: string;
  kind: string;
  payload: unknown;
  /** Not claimed before this time (default: at once). */
  runAfter?: Date;
}

/**
 * A kind of durable job: its name, and how its payload is written and read back. The one
 * place both the code that enqueues a job and its handler agree on what the payload holds.
 */
export interface JobKind<P> {
  readonly kind: string;
  /** The stored form of a payload (plain JSON). */
  encode(payload: P): unknown;
  /** @throws internal (`bad_job_payload`) when the stored form is not one this kind writes. */
  decode(stored: unknown): P;
}

/** A new job of `kind` with `payload`. */
export const newJob = <P>(kind: JobKind<P>, id: string, payload: P, runAfter?: Date): NewJob => ({ id, kind: kind.kind, payload: kind.encode(payload), runAfter });

/** A job kind whose payload is an object of string fields, stored under snake_case names. */
export function stringFieldsKind<P extends Record<string, string>>(kind: string, fields: { [K in keyof P]: string }): JobKind<P> {
  return {
    kind,
    encode: (payload) => Object.fromEntries(Object.entries(fields).map(([name, stored]) => [stored, payload[name as keyof P]])),
    decode(stored) {
      const record = (typeof stored === 'object' && stored !== null ? stored : {}) as Record<string, unknown>;
      const payload: Record<string, string> = {};
      for (const [name, column] of Object.entries(fields)) {
        const value = record[column];
        if (typeof value !== 'string' || value === '') throw new DomainError('internal', 'bad_job_payload', `a ${kind} job needs a ${column} string in its payload`);
        payload[name] = value;
      }
      return payload as P;
    },
  };
}

/** Verifies and commits the parts of a completed upload session (the CAS ingest). */
export const INGEST_JOB = stringFieldsKind<{ uploadId: string }>('ingest', { uploadId: 'upload_id' });

/** Builds, boot-tests and publishes the images of a compose. */
export const COMPOSE_JOB = stringFieldsKind<{ composeId: string }>('compose', { composeId: 'compose_id' });

/** Drives a publish job through its steps. */
export const PUBLISH_JOB = stringFieldsKind<{ publishJobId: string }>('publish', { publishJobId: 'publish_job_id' });
