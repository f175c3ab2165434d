import type { Logger } from 'pino';
import type { Cas } from '../blobs/cas.ts';
import type { Clock } from '../lib/clock.ts';
import type { MetadataStore } from '../store/metadata-store.ts';

/** What every service may be given; each factory picks the slice it needs. */
export interface ServiceDeps {
  store: MetadataStore;
  blobs: Cas;
  clock: Clock;
  log: Logger;
  newId: () => string;
}
