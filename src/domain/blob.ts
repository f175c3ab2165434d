import type { Digest } from './digest.ts';

/** A trusted CAS blob: the server computed its sha256 and size itself. */
export interface BlobRecord {
  digest: Digest;
  size: number;
  createdAt: Date;
}
