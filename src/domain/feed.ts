/** The catalog as the Incus feed needs it: published, indexed artifacts and aliases, no bytes. */

/** One published, Incus-eligible artifact, with what the publish job recorded about it. */
export interface FeedEntry {
  image: string;
  version: string;
  versionId: string;
  publishedAt: Date;
  operatingSystem: string;
  architecture: string;
  variant: string;
  disk: { digest: string; size: number };
  metadata: { digest: string; size: number };
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
