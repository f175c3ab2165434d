/** The catalog as the Incus feed needs it: published, indexed artifacts and aliases, no bytes. */
import type { IncusImageType } from './catalog.ts';

/** One published, Incus-eligible artifact, with what the publish job recorded about it. */
export interface FeedEntry {
  image: string;
  version: string;
  versionId: string;
  publishedAt: Date;
  operatingSystem: string;
  architecture: string;
  variant: string;
  /** From the artifact format: a qcow2 is a VM image, a squashfs a container image. */
  type: IncusImageType;
  /** The primary blob: the VM disk (qcow2) or the container root filesystem (squashfs). */
  root: { digest: string; size: number };
  metadata: { digest: string; size: number };
  /** sha256 (hex) of the metadata bytes followed by the root bytes: the Incus fingerprint. */
  combinedSha256: string;
  /** metadata.yaml properties (release, description, ...). */
  properties: Record<string, string>;
}

export interface FeedAlias {
  image: string;
  alias: string;
  versionId: string;
}

/** The catalog as the feed needs it; reading it never touches blob bytes. */
export interface FeedSnapshot {
  entries: FeedEntry[];
  aliases: FeedAlias[];
}
