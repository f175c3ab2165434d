import type { Alias, Artifact, Attachment, Image, ImageVersion, Manifest } from '../../domain/catalog.ts';
import type { PublishJob, PublishStep } from '../../domain/publish.ts';

/** Domain objects → contract schemas (snake_case, ISO dates; absent optional fields omitted). */
const iso = (d: Date | undefined) => d?.toISOString();

export const imageDto = (i: Image) => ({ id: i.id, name: i.name, display_name: i.displayName, description: i.description, created_at: iso(i.createdAt), updated_at: iso(i.updatedAt) });

export const versionDto = (v: ImageVersion) => ({
  id: v.id,
  image_id: v.imageId,
  version: v.version,
  state: v.state,
  published_at: iso(v.publishedAt),
  created_at: iso(v.createdAt),
  updated_at: iso(v.updatedAt),
});

export const artifactDto = (a: Artifact) => ({
  id: a.id,
  version_id: a.versionId,
  variant: a.variant,
  operating_system: a.operatingSystem,
  architecture: a.architecture,
  format: a.format,
  primary_blob_digest: a.primaryBlobDigest,
  primary_blob_size_bytes: a.primaryBlobSize,
  primary_media_type: a.primaryMediaType,
  created_at: iso(a.createdAt),
  updated_at: iso(a.updatedAt),
});

export const attachmentDto = (x: Attachment) => ({
  id: x.id,
  artifact_id: x.artifactId,
  name: x.name,
  media_type: x.mediaType,
  blob_digest: x.blobDigest,
  blob_size_bytes: x.blobSize,
  created_at: iso(x.createdAt),
  updated_at: iso(x.updatedAt),
});

export const manifestDto = (m: Manifest) => ({
  image: imageDto(m.image),
  version: versionDto(m.version),
  artifacts: m.artifacts.map((a) => ({ artifact: artifactDto(a.artifact), attachments: a.attachments.map(attachmentDto) })),
});

export const aliasDto = (a: Alias) => ({
  id: a.id,
  image_id: a.imageId,
  alias: a.alias,
  version_id: a.versionId,
  version: a.version,
  created_at: iso(a.createdAt),
  updated_at: iso(a.updatedAt),
});

const stepDto = (s: PublishStep) => ({
  id: s.id,
  job_id: s.jobId,
  name: s.name,
  state: s.state,
  blocking: s.blocking,
  sequence: s.sequence,
  attempt_count: s.attemptCount,
  started_at: iso(s.startedAt),
  finished_at: iso(s.finishedAt),
  failure_message: s.failureMessage,
  created_at: iso(s.createdAt),
  updated_at: iso(s.updatedAt),
});

/** Contract `PublishJob`, with the `failed_step` and `reason` extensions the flow's poll command reads. */
export const publishJobDto = (j: PublishJob) => ({
  id: j.id,
  version_id: j.versionId,
  image_name: j.imageName,
  version: j.version,
  state: j.state,
  started_at: iso(j.startedAt),
  finished_at: iso(j.finishedAt),
  failure_message: j.failedStep && j.reason ? `${j.failedStep}: ${j.reason}` : undefined,
  failed_step: j.failedStep,
  reason: j.reason,
  created_at: iso(j.createdAt),
  updated_at: iso(j.updatedAt),
  steps: j.steps.map(stepDto),
});
