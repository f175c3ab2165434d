import type { Cas } from '../blobs/cas.ts';
import type { BlobReader, ByteRange } from '../blobs/driver.ts';
import type { BlobRecord } from '../domain/blob.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError } from '../domain/errors.ts';
import type { MetadataStore } from '../store/metadata-store.ts';

export type BlobService = ReturnType<typeof createBlobService>;

/**
 * Read access to trusted blobs. The metadata store decides what is trusted: bytes that sit
 * in the blob store without a record (a crash between rename and commit) are not served.
 */
export function createBlobService(deps: { store: Pick<MetadataStore, 'getBlob'>; blobs: Pick<Cas, 'open' | 'readUrl'> }) {
  return {
    async describe(digest: Digest): Promise<BlobRecord> {
      const blob = await deps.store.getBlob(digest);
      if (!blob) throw new DomainError('not_found', 'blob_not_found', `no trusted blob has digest ${digest}`);
      return blob;
    },
    open(digest: Digest, range?: ByteRange): Promise<BlobReader> {
      return deps.blobs.open(digest, range);
    },
    /** A short-lived URL of the storage itself that serves the blob, where downloads are redirected (else undefined). */
    readUrl: deps.blobs.readUrl,
  };
}
