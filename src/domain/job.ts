/**
 * Durable jobs are rows in the metadata store, claimed with a lease that the runner
 * extends while it works. A job whose lease lapses (its process died) is claimed again,
 * so every handler must be safe to re-run from the start.
 */
export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

export type JobPayload = Record<string, string | number | boolean | null>;

export interface Job {
  id: string;
  kind: string;
  payload: JobPayload;
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
  payload: JobPayload;
}
