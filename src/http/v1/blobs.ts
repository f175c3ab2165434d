import type { Digest } from '../../domain/digest.ts';
import type { BlobService } from '../../services/blobs.ts';
import type { ContractRouter } from './route.ts';
import { sendRepresentation, type Representation } from '../send-representation.ts';

/** The representation of a trusted blob; its digest is its strong entity tag. */
export async function blobRepresentation(blobs: BlobService, digest: Digest, as: { contentType: string; filename?: string }): Promise<Representation> {
  const blob = await blobs.describe(digest);
  return {
    etag: `"${blob.digest}"`,
    lastModified: blob.createdAt,
    size: blob.size,
    ...as,
    open: (range) => blobs.open(digest, range),
    ...(blobs.readUrl && { redirect: (response) => blobs.readUrl!(digest, response) }),
  };
}

/** `GET`/`HEAD /v1/blobs/{digest}`: public reads of trusted CAS blobs. */
export function blobRoutes(deps: { blobs: BlobService }) {
  return (r: ContractRouter) => {
    for (const operationId of ['openBlob', 'headBlob']) {
      r.define<{ Params: { digest: Digest } }>(operationId, {}, async (request, reply) =>
        sendRepresentation(request, reply, await blobRepresentation(deps.blobs, request.params.digest, { contentType: 'application/octet-stream' })),
      );
    }
  };
}
