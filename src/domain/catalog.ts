import type { Digest } from './digest.ts';
import { DomainError } from './errors.ts';

/**
 * Release meaning on top of trusted bytes: an image (namespace) holds versions; a draft
 * version collects artifacts (one primary blob each) with attachments (secondary blobs);
 * publishing freezes it. Aliases point at published versions only.
 */
export const VERSION_STATES = ['draft', 'publishing', 'published'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

export const ARTIFACT_FORMATS = ['raw', 'raw.gz', 'qcow2'] as const;
export type ArtifactFormat = (typeof ARTIFACT_FORMATS)[number];

export interface Image {
  id: string;
  name: string;
  displayName?: string;
  description?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface ImageVersion {
  id: string;
  imageId: string;
  version: string;
  state: VersionState;
  publishedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface Artifact {
  id: string;
  versionId: string;
  variant: string;
  operatingSystem: string;
  architecture: string;
  format: ArtifactFormat;
  primaryBlobDigest: Digest;
  primaryBlobSize: number;
  primaryMediaType: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface Attachment {
  id: string;
  artifactId: string;
  name: string;
  mediaType: string;
  blobDigest: Digest;
  blobSize: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface Alias {
  id: string;
  imageId: string;
  alias: string;
  versionId: string;
  /** The version string the alias points at (denormalised for responses). */
  version: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface Manifest {
  image: Image;
  version: ImageVersion;
  artifacts: { artifact: Artifact; attachments: Attachment[] }[];
}

/** Each artifact with its attachments, in the order given: the one place they are grouped. */
export function groupAttachments(artifacts: readonly Artifact[], attachments: readonly Attachment[]): Manifest['artifacts'] {
  return artifacts.map((artifact) => ({ artifact, attachments: attachments.filter((x) => x.artifactId === artifact.id) }));
}

/** "Nothing in a version can change once it is no longer a draft." */
export function assertDraft(v: Pick<ImageVersion, 'version' | 'state'>): void {
  if (v.state !== 'draft') {
    throw new DomainError('precondition_failed', 'version_not_draft', `version ${v.version} is ${v.state}; nothing in a version can change once it is no longer a draft`);
  }
}

/** A human name for an artifact in messages: variant/os/architecture/format. */
export const describeArtifact = (a: Pick<Artifact, 'variant' | 'operatingSystem' | 'architecture' | 'format'>) => `${a.operatingSystem}/${a.architecture}/${a.format} (variant ${a.variant})`;

/** The attachment that makes a qcow2 artifact an Incus VM image. */
export const INCUS_METADATA_ATTACHMENT = 'incus.tar.xz';
