import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
import type { MetadataStore } from '../store/metadata-store.ts';
import { buildFeed } from '../streams/build.ts';
import type { ServiceDeps } from './deps.ts';

export interface FeedDocument {
  body: string;
  /** Strong entity tag: a hash of the body. */
  etag: string;
  lastModified: Date;
  /** The body compressed once per build, for clients that accept it (`Content-Encoding`). */
  encoded: { br: Buffer; gzip: Buffer };
}

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

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

  const document = async (value: unknown, lastModified: Date): Promise<FeedDocument> => {
    const body = JSON.stringify(value);
    const [br, gz] = await Promise.all([brotli(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } }), gzipped(body, { level: 9 })]);
    return { body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 32)}"`, lastModified, encoded: { br, gzip: gz } };
  };

  async function build(revision: number, changedAt: Date): Promise<Built> {
    const { index, images, skipped } = buildFeed(await deps.store.feedSnapshot());
    for (const reason of skipped) deps.log.warn({ reason }, 'artifact left out of the Incus feed');
    // Before the first change there is no change time: the feed is empty and new as of now.
    const modified = changedAt.getTime() > 0 ? changedAt : deps.clock.now();
    // A rebuild with equal content keeps its validators, so clients keep getting 304.
    const keep = (fresh: FeedDocument, old?: FeedDocument) => (old?.body === fresh.body ? old : fresh);
    const built = { revision, index: keep(await document(index, modified), cache?.index), images: keep(await document(images, modified), cache?.images) };
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
