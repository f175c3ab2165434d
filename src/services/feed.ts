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
  revision: number;
  index: FeedDocument;
  images: FeedDocument;
}

/**
 * The Incus Simple Streams documents, built from the catalog (never from blob bytes) and cached
 * until the catalog's revision changes. Every request reads the revision, so a publish or an
 * alias move made through any instance is visible on the next request everywhere; the body is
 * deterministic and Last-Modified is the time of the change, so every instance also sends the
 * same validators.
 */
export function createFeedService(deps: Pick<ServiceDeps, 'clock' | 'log'> & { store: Pick<MetadataStore, 'feedSnapshot' | 'catalogRevision'> }) {
  let cache: Built | undefined;
  let building: { revision: number; done: Promise<Built> } | undefined;

  const document = (value: unknown, lastModified: Date): FeedDocument => {
    const body = JSON.stringify(value);
    return { body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`, lastModified };
  };

  async function build(revision: number, changedAt: Date): Promise<Built> {
    const { index, images, skipped } = buildFeed(await deps.store.feedSnapshot());
    for (const reason of skipped) deps.log.warn({ reason }, 'artifact left out of the Incus feed');
    // Before the first change there is no change time: the feed is empty and new as of now.
    const modified = changedAt.getTime() > 0 ? changedAt : deps.clock.now();
    // A rebuild with equal content keeps its validators, so clients keep getting 304.
    const keep = (fresh: FeedDocument, old?: FeedDocument) => (old?.body === fresh.body ? old : fresh);
    const built = { revision, index: keep(document(index, modified), cache?.index), images: keep(document(images, modified), cache?.images) };
    if (!cache || cache.revision < revision) cache = built;
    return built;
  }

  return {
    async document(which: 'index' | 'images'): Promise<FeedDocument> {
      const { revision, changedAt } = await deps.store.catalogRevision();
      if (cache && cache.revision >= revision) return cache[which];
      // A build for an older revision does not answer a request that saw this one.
      if (building?.revision !== revision) {
        const done = build(revision, changedAt).finally(() => {
          if (building?.done === done) building = undefined;
        });
        building = { revision, done };
      }
      return (await building.done)[which];
    },
  };
}
