import type { Compose, ComposeFailure, ComposedFile, ComposePackage, ImageState } from '../domain/compose.ts';
import type { NewJob } from '../domain/job.ts';

/**
 * Image builds and their logs. A compose and the durable job that builds it are created
 * together; state changes are conditional on the state they leave, so a cancel and a worker
 * (on any instance) cannot both win. Errors: `unavailable`.
 */
export interface ComposeRepository {
  /** Inserts a pending compose and enqueues `job`, atomically. */
  insertCompose(input: { compose: Omit<Compose, 'createdAt' | 'updatedAt' | 'cancelRequested' | 'state'>; job: NewJob; now: Date }): Promise<void>;
  getCompose(id: string): Promise<Compose | undefined>;
  /**
   * Moves the compose from one of `from` to `to`, recording what is given (files, packages, an
   * error; a final state sets `finishedAt`). Returns false, changing nothing, when it was not in one of `from`.
   */
  moveCompose(input: { id: string; from: readonly ImageState[]; to: ImageState; files?: ComposedFile[]; packages?: ComposePackage[]; error?: ComposeFailure; now: Date }): Promise<boolean>;
  /** Marks an unfinished compose for cancelling (the worker stops it); false when it had finished. */
  requestComposeCancel(input: { id: string; now: Date }): Promise<boolean>;
  /** Appends log lines after the compose's last one. */
  appendComposeLog(input: { id: string; lines: readonly string[] }): Promise<void>;
  /** Log lines after `after` (a line number, 0 for the start), at most `limit`, with their numbers. */
  readComposeLog(input: { id: string; after: number; limit: number }): Promise<{ seq: number; line: string }[]>;
}
