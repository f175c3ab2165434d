import type { ArtifactFormat } from '../../domain/catalog.ts';
import type { Digest } from '../../domain/digest.ts';
import type { ArtifactService } from '../../services/artifacts.ts';
import type { BlobService } from '../../services/blobs.ts';
import { artifactDto, attachmentDto } from './catalog-dto.ts';
import type { ContractRouter } from './route.ts';
import { sendRepresentation } from '../send-representation.ts';
import { blobRepresentation } from './blobs.ts';

type VersionParams = { Params: { name: string; version: string } };
type ArtifactParams = { Params: { name: string; version: string; artifact_id: string } };
type AttachmentParams = { Params: { name: string; version: string; artifact_id: string; attachment_id: string } };

/** Artifacts and attachments of a version, and downloads of their bytes. */
export function artifactRoutes(deps: { artifacts: ArtifactService; blobs: BlobService }) {
  const { artifacts } = deps;
  return (r: ContractRouter) => {
    r.define<VersionParams>('listArtifacts', {}, async (request) => ({
      artifacts: (await artifacts.list(request.params.name, request.params.version)).map(artifactDto),
    }));

    r.define<
      VersionParams & {
        Body: { variant: string; operating_system: string; architecture: string; format: ArtifactFormat; primary_blob_digest: Digest; primary_blob_size_bytes: number; primary_media_type: string };
      }
    >('addArtifact', { action: 'catalog.write' }, async (request, reply) => {
      const b = request.body;
      const created = await artifacts.add(request.principal!, request.params.name, request.params.version, {
        variant: b.variant,
        operatingSystem: b.operating_system,
        architecture: b.architecture,
        format: b.format,
        primaryBlobDigest: b.primary_blob_digest,
        primaryBlobSize: b.primary_blob_size_bytes,
        primaryMediaType: b.primary_media_type,
      });
      return reply.code(201).send(artifactDto(created));
    });

    r.define<ArtifactParams>('getArtifact', {}, async (request) =>
      artifactDto(await artifacts.artifact(request.params.name, request.params.version, request.params.artifact_id)),
    );

    r.define<ArtifactParams>('deleteArtifact', { action: 'catalog.write' }, async (request, reply) => {
      await artifacts.remove(request.principal!, request.params.name, request.params.version, request.params.artifact_id);
      return reply.code(204).send();
    });

    r.define<ArtifactParams & { Body: { name: string; media_type: string; blob_digest: Digest; blob_size_bytes: number } }>('addAttachment',
      { action: 'catalog.write' },
      async (request, reply) => {
        const b = request.body;
        const p = request.params;
        const created = await artifacts.attach(request.principal!, p.name, p.version, p.artifact_id, { name: b.name, mediaType: b.media_type, blobDigest: b.blob_digest, blobSize: b.blob_size_bytes });
        return reply.code(201).send(attachmentDto(created));
      },
    );

    r.define<AttachmentParams>('deleteAttachment', { action: 'catalog.write' }, async (request, reply) => {
      const p = request.params;
      await artifacts.detach(request.principal!, p.name, p.version, p.artifact_id, p.attachment_id);
      return reply.code(204).send();
    });

    // Downloads: the blob's bytes with the blob route's semantics, typed by the recorded media type.
    for (const operationId of ['openArtifactDownload', 'headArtifactDownload']) {
      r.define<ArtifactParams>(operationId, {}, async (request, reply) => {
        const { name, version } = request.params;
        const a = await artifacts.artifact(name, version, request.params.artifact_id);
        const filename = `${name}_${version}_${a.operatingSystem}_${a.architecture}_${a.variant}.${a.format}`;
        return sendRepresentation(request, reply, await blobRepresentation(deps.blobs, a.primaryBlobDigest, { contentType: a.primaryMediaType, filename }));
      });
    }
    for (const operationId of ['openAttachmentDownload', 'headAttachmentDownload']) {
      r.define<AttachmentParams>(operationId, {}, async (request, reply) => {
        const p = request.params;
        const x = await artifacts.attachment(p.name, p.version, p.artifact_id, p.attachment_id);
        return sendRepresentation(request, reply, await blobRepresentation(deps.blobs, x.blobDigest, { contentType: x.mediaType, filename: x.name }));
      });
    }
  };
}
