import type { Alias, Artifact, Attachment, Image, ImageVersion } from '../domain/catalog.ts';
import type { NewJob } from '../domain/job.ts';
import type { IncusIndexEntry, PublishJob, PublishStepName } from '../domain/publish.ts';
import type { FeedSnapshot } from '../domain/feed.ts';

/**
 * Images, versions, artifacts, attachments and aliases. Every change to a version's content is
 * conditional on the version still being a draft inside the same transaction, and identities
 * are unique constraints, so concurrent requests (and several instances) cannot break the
 * rules. Errors: `conflict` for a duplicate identity, `not_found` and `precondition_failed`
 * as documented, `unavailable`.
 */
export interface CatalogRepository {
  /** @throws conflict when the name exists. */
  insertImage(image: Image): Promise<void>;
  getImage(name: string): Promise<Image | undefined>;
  /** Images with at least one published version, by name. */
  listPublishedImages(): Promise<Image[]>;
  /** @throws conflict when the image has this version already. */
  insertVersion(version: ImageVersion): Promise<void>;
  getVersion(imageId: string, version: string): Promise<ImageVersion | undefined>;
  getVersionById(id: string): Promise<ImageVersion | undefined>;
  /** Published versions of an image, oldest publication first. */
  listPublishedVersions(imageId: string): Promise<ImageVersion[]>;

  /**
   * Adds an artifact to a draft.
   * @throws precondition_failed when the version is no longer a draft; conflict for a second
   * artifact with the same variant, operating system, architecture and format.
   */
  insertArtifact(input: { artifact: Artifact; now: Date }): Promise<void>;
  /** Removes an artifact (and its attachments) from a draft; false when it is not there. @throws precondition_failed */
  deleteArtifact(input: { versionId: string; artifactId: string; now: Date }): Promise<boolean>;
  /** Artifacts of a version, oldest first. */
  listArtifacts(versionId: string): Promise<Artifact[]>;
  getArtifact(versionId: string, artifactId: string): Promise<Artifact | undefined>;
  /** @throws precondition_failed when the version is no longer a draft; conflict for a second attachment of that name. */
  insertAttachment(input: { versionId: string; attachment: Attachment; now: Date }): Promise<void>;
  /** false when it is not there. @throws precondition_failed when the version is no longer a draft. */
  deleteAttachment(input: { versionId: string; artifactId: string; attachmentId: string; now: Date }): Promise<boolean>;
  /** Attachments of the given artifacts, oldest first. */
  listAttachments(artifactIds: readonly string[]): Promise<Attachment[]>;
  getAttachment(artifactId: string, attachmentId: string): Promise<Attachment | undefined>;

  /**
   * Creates or moves an alias to a version that is published at the moment of writing.
   * @throws precondition_failed when the version is not published.
   */
  putAlias(input: { id: string; imageId: string; alias: string; versionId: string; now: Date }): Promise<Alias>;
  getAlias(imageId: string, alias: string): Promise<Alias | undefined>;
  /** Aliases of an image, by name. */
  listAliases(imageId: string): Promise<Alias[]>;
  /** false when there was no such alias. */
  deleteAlias(imageId: string, alias: string, now: Date): Promise<boolean>;

}

/** What the Incus feed is built from: published, indexed artifacts and aliases, without bytes. */
export interface FeedRepository {
  feedSnapshot(): Promise<FeedSnapshot>;
  /**
   * A counter that grows with every change the snapshot shows (a version published, an alias
   * created, moved or deleted), written in the same transaction as the change, and the time of
   * the last one. Cheap: read on every feed request to decide whether to rebuild.
   */
  catalogRevision(): Promise<{ revision: number; changedAt: Date }>;
}

/**
 * Who may write a publish job's progress: the durable job the publish job names as its driver,
 * while `owner` holds that durable job's lease. Every progress write is conditional on it, so a
 * worker that lost its lease, or a stale durable job superseded by a retry, changes nothing.
 */
export interface PublishDriver {
  jobId: string;
  owner: string;
}

/**
 * Publish jobs: one per version, created atomically with the draft → publishing move, their
 * steps, and the Incus index computed for the feed. Progress writes return false, changing
 * nothing, unless `driver` still drives the job.
 */
export interface PublishRepository {
  /**
   * Moves a draft with at least one artifact to `publishing`, creating its publish job (steps
   * queued) and `queue`, the durable job that drives it, atomically. When the version is
   * already publishing or published, changes nothing and returns its existing job id.
   * @throws precondition_failed when the draft has no artifact.
   */
  startPublish(input: { versionId: string; jobId: string; stepIds: Record<PublishStepName, string>; queue: NewJob; now: Date }): Promise<{ jobId: string; created: boolean }>;
  getPublishJob(id: string): Promise<PublishJob | undefined>;
  /** Marks the job running and one step running, counting an attempt. */
  startStep(input: { jobId: string; step: PublishStepName; driver: PublishDriver; now: Date }): Promise<boolean>;
  /** Records a step's success, or that it had nothing to do. */
  finishStep(input: { jobId: string; step: PublishStepName; outcome: 'succeeded' | 'skipped'; driver: PublishDriver; now: Date }): Promise<boolean>;
  /**
   * Replaces the Incus index entries of these artifacts (`incus_index` writes what it computed
   * before its step is recorded; a re-run writes the same). The feed shows them once the version
   * is published.
   */
  putIncusIndex(input: { entries: readonly IncusIndexEntry[]; driver: PublishDriver; jobId: string; now: Date }): Promise<boolean>;
  /** Fails the step and the job with a reason. */
  failStep(input: { jobId: string; step: PublishStepName; reason: string; driver: PublishDriver; now: Date }): Promise<boolean>;
  /**
   * The last step: the version becomes published (published_at set once), the step and the
   * job succeed, atomically.
   */
  finalizePublish(input: { jobId: string; driver: PublishDriver; now: Date }): Promise<boolean>;
  /**
   * Requeues a failed job from its failed step with `queue` as its new driver, atomically.
   * Returns false (and changes nothing) unless the job is failed.
   */
  retryPublishJob(input: { jobId: string; queue: NewJob; now: Date }): Promise<boolean>;
  getIncusIndex(artifactIds: readonly string[]): Promise<IncusIndexEntry[]>;
}
