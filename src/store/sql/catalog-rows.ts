import type { Alias, Artifact, ArtifactFormat, Attachment, Image, ImageVersion, VersionState } from '../../domain/catalog.ts';
import type { Digest } from '../../domain/digest.ts';
import type { IncusIndexEntry, PublishJob, PublishJobState, PublishStep, PublishStepName, PublishStepState } from '../../domain/publish.ts';
import { compact, date, num, opt, optDate } from './row-values.ts';
import type { AliasesTable, ArtifactsTable, AttachmentsTable, ImagesTable, ImageVersionsTable, IncusIndexTable, PublishJobsTable, PublishStepsTable } from './schema.ts';

/** Row ↔ domain mapping for the catalog tables; absent columns become absent fields. */

export const imageFromRow = (r: ImagesTable): Image =>
  compact({ id: r.id, name: r.name, displayName: opt(r.display_name), description: opt(r.description), createdAt: date(r.created_at), updatedAt: date(r.updated_at) });

export const imageToRow = (i: Image): ImagesTable => ({
  id: i.id,
  name: i.name,
  display_name: i.displayName ?? null,
  description: i.description ?? null,
  created_at: i.createdAt.getTime(),
  updated_at: i.updatedAt.getTime(),
});

export const versionFromRow = (r: ImageVersionsTable): ImageVersion =>
  compact({
    id: r.id,
    imageId: r.image_id,
    version: r.version,
    state: r.state as VersionState,
    publishedAt: optDate(r.published_at),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  });

export const artifactFromRow = (r: ArtifactsTable): Artifact => ({
  id: r.id,
  versionId: r.version_id,
  variant: r.variant,
  operatingSystem: r.operating_system,
  architecture: r.architecture,
  format: r.format as ArtifactFormat,
  primaryBlobDigest: r.primary_blob_digest as Digest,
  primaryBlobSize: num(r.primary_blob_size),
  primaryMediaType: r.primary_media_type,
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
});

export const artifactToRow = (a: Artifact): ArtifactsTable => ({
  id: a.id,
  version_id: a.versionId,
  variant: a.variant,
  operating_system: a.operatingSystem,
  architecture: a.architecture,
  format: a.format,
  primary_blob_digest: a.primaryBlobDigest,
  primary_blob_size: a.primaryBlobSize,
  primary_media_type: a.primaryMediaType,
  created_at: a.createdAt.getTime(),
  updated_at: a.updatedAt.getTime(),
});

export const attachmentFromRow = (r: AttachmentsTable): Attachment => ({
  id: r.id,
  artifactId: r.artifact_id,
  name: r.name,
  mediaType: r.media_type,
  blobDigest: r.blob_digest as Digest,
  blobSize: num(r.blob_size),
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
});

export const attachmentToRow = (a: Attachment): AttachmentsTable => ({
  id: a.id,
  artifact_id: a.artifactId,
  name: a.name,
  media_type: a.mediaType,
  blob_digest: a.blobDigest,
  blob_size: a.blobSize,
  created_at: a.createdAt.getTime(),
  updated_at: a.updatedAt.getTime(),
});

export const aliasFromRow = (r: AliasesTable & { version: string }): Alias => ({
  id: r.id,
  imageId: r.image_id,
  alias: r.alias,
  versionId: r.version_id,
  version: r.version,
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
});

export const stepFromRow = (r: PublishStepsTable): PublishStep =>
  compact({
    id: r.id,
    jobId: r.job_id,
    name: r.name as PublishStepName,
    state: r.state as PublishStepState,
    blocking: true,
    sequence: num(r.sequence),
    attemptCount: num(r.attempt_count),
    startedAt: optDate(r.started_at),
    finishedAt: optDate(r.finished_at),
    failureMessage: opt(r.failure_message),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  });

export const publishJobFromRow = (r: PublishJobsTable & { image_name: string; version: string }, steps: PublishStep[]): PublishJob =>
  compact({
    id: r.id,
    versionId: r.version_id,
    imageName: r.image_name,
    version: r.version,
    state: r.state as PublishJobState,
    startedAt: optDate(r.started_at),
    finishedAt: optDate(r.finished_at),
    failedStep: opt(r.failed_step) as PublishStepName | undefined,
    reason: opt(r.reason),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    steps,
  });

export const incusFromRow = (r: IncusIndexTable): IncusIndexEntry => ({
  artifactId: r.artifact_id,
  combinedSha256: r.combined_sha256,
  architecture: r.architecture,
  creationDate: num(r.creation_date),
  properties: JSON.parse(r.properties) as Record<string, string>,
});
