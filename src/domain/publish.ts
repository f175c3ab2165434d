/**
 * A publish job freezes a draft and runs its blocking steps in order. A failed step stops the
 * job; `retry` requeues it from the first failed step and never re-runs a succeeded one. Every
 * step must be safe to run again after a crash.
 */
export const PUBLISH_STEPS = ['validate_catalog', 'incus_index', 'finalize_publish'] as const;
export type PublishStepName = (typeof PUBLISH_STEPS)[number];

export type PublishJobState = 'queued' | 'running' | 'succeeded' | 'failed';
export type PublishStepState = 'queued' | 'running' | 'succeeded' | 'failed' | 'skipped';

export interface PublishStep {
  id: string;
  jobId: string;
  name: PublishStepName;
  state: PublishStepState;
  blocking: boolean;
  sequence: number;
  attemptCount: number;
  startedAt?: Date;
  finishedAt?: Date;
  failureMessage?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface PublishJob {
  id: string;
  versionId: string;
  imageName: string;
  version: string;
  state: PublishJobState;
  startedAt?: Date;
  finishedAt?: Date;
  failedStep?: PublishStepName;
  /** The failed step's reason, while failed. */
  reason?: string;
  createdAt: Date;
  updatedAt: Date;
  steps: PublishStep[];
}

/**
 * What the Incus projection needs of an eligible artifact, computed once at publish time so
 * building the feed never reads blob bytes.
 */
export interface IncusIndexEntry {
  artifactId: string;
  /**
   * sha256 (hex) of the incus.tar.xz bytes followed by the primary blob's bytes (the qcow2 disk
   * or the squashfs root filesystem): the Incus fingerprint.
   */
  combinedSha256: string;
  /** From metadata.yaml: `architecture` as written there, and `creation_date` (epoch seconds). */
  architecture: string;
  creationDate: number;
  /** metadata.yaml `properties`, string values only (os, release, description, ...). */
  properties: Record<string, string>;
}
