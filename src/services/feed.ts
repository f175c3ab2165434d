import { createHash } from 'node:crypto';
import type { MetadataStore } from '../store/metadata-store.ts';
import { buildFeed } from '../streams/build.ts';
import type { ServiceDeps } from './deps.ts';

export interface FeedDocument {
  body: string;
  /** Strong entity tag: a hash of the body. */
  etag: string;
  lastModified: Date;
}

export type FeedService = ReturnType<typeof createFeedService>;

interface Built {
  revision: string;
  index: FeedDocument;
  images: FeedDocument;
}

/**
 * The Incus Simple Streams documents, built from the catalog (never from blob bytes) and cached
 * until the catalog's feed revision changes. Every request reads the revision, so a publish or
 * an alias move made through any instance is visible on the next request everywhere.
 */
export function createFeedService(deps: Pick<ServiceDeps, 'clock' | 'log'> & { store: Pick<MetadataStore, 'feedSnapshot' | 'feedRevision'> }) {
  let cache: Built | undefined;
  let building: Promise<Built> | undefined;

  const document = (value: unknown, lastModified: Date): FeedDocument => {
    const body = JSON.stringify(value);
    return { body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`, lastModified };
  };

  async function build(revision: string): Promise<Built> {
    const { index, images, skipped } = buildFeed(await deps.store.feedSnapshot());
    for (const reason of skipped) deps.log.warn({ reason }, 'artifact left out of the Incus feed');
    const now = deps.clock.now();
    // A rebuild with equal content keeps its validators, so clients keep getting 304.
    const keep = (fresh: FeedDocument, old?: FeedDocument) => (old?.body === fresh.body ? old : fresh);
    cache = { revision, index: keep(document(index, now), cache?.index), images: keep(document(images, now), cache?.images) };
    return cache;
  }

  return {
    async document(which: 'index' | 'images'): Promise<FeedDocument> {
      const revision = await deps.store.feedRevision();
      if (cache?.revision === revision) return cache[which];
      building ??= build(revision).finally(() => (building = undefined));
      return (await building)[which];
    },
  };
}
