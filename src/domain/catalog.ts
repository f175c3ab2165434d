import type { Digest } from './digest.ts';
import { DomainError } from './errors.ts';

/**
 * Release meaning on top of trusted bytes: an image (namespace) holds versions; a draft
 * version collects artifacts (one primary blob each) with attachments (secondary blobs);
 * publishing freezes it. Aliases point at published versions only.
 */
export const VERSION_STATES = ['draft', 'publishing', 'published'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

/** The seed's formats, and `squashfs` (an imgsrv extension value): a container root filesystem. */
export const ARTIFACT_FORMATS = ['raw', 'raw.gz', 'qcow2', 'squashfs'] as const;
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

/** The attachment that makes a qcow2 artifact an Incus VM image, a squashfs one a container image. */
export const INCUS_METADATA_ATTACHMENT = 'incus.tar.xz';

/**
 * The Incus image an artifact of each format becomes when it has an `incus.tar.xz`: a qcow2 is
 * the disk of a virtual machine, a squashfs the root filesystem of a container. Other formats
 * are not served to Incus.
 */
const INCUS_IMAGE_TYPES = { qcow2: 'virtual-machine', squashfs: 'container' } as const satisfies Partial<Record<ArtifactFormat, string>>;
export type IncusImageType = (typeof INCUS_IMAGE_TYPES)[keyof typeof INCUS_IMAGE_TYPES];

/** The Incus image type of an artifact format, or undefined when Incus is not served that format. */
export const incusImageType = (format: ArtifactFormat): IncusImageType | undefined => (INCUS_IMAGE_TYPES as Partial<Record<ArtifactFormat, IncusImageType>>)[format];
