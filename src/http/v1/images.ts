import type { FastifyInstance } from 'fastify';
import type { CatalogService } from '../../services/catalog.ts';
import { imageDto, manifestDto, versionDto } from '../catalog-dto.ts';
import type { Contract } from '../contract.ts';
import { defineRoute } from '../route.ts';

type ImageParams = { Params: { name: string } };
type VersionParams = { Params: { name: string; version: string } };

/** `/v1/images`, versions, manifests and refs. */
export function imageRoutes(deps: { contract: Contract; catalog: CatalogService; publicUrl?: string }) {
  const { contract, catalog } = deps;
  return (app: FastifyInstance) => {
    defineRoute<{ Body: { name: string; display_name?: string; description?: string } }>(app, contract, 'createImage', { action: 'catalog.write' }, async (request, reply) => {
      const { name, display_name: displayName, description } = request.body;
      const image = await catalog.createImage({ name, displayName, description });
      return reply.code(201).header('location', `${deps.publicUrl ?? ''}/v1/images/${image.name}`).send(imageDto(image));
    });

    defineRoute(app, contract, 'listImages', {}, async () => ({ images: (await catalog.listImages()).map(imageDto) }));

    defineRoute<ImageParams>(app, contract, 'getImage', {}, async (request) => imageDto(await catalog.publishedImage(request.params.name)));

    defineRoute<ImageParams>(app, contract, 'listVersions', {}, async (request) => ({ versions: (await catalog.listVersions(request.params.name)).map(versionDto) }));

    defineRoute<ImageParams & { Body: { version: string } }>(app, contract, 'createDraftVersion', { action: 'catalog.write' }, async (request, reply) => {
      const draft = await catalog.createDraft(request.params.name, request.body.version);
      return reply
        .code(201)
        .header('location', `${deps.publicUrl ?? ''}/v1/images/${request.params.name}/versions/${draft.version}`)
        .send(versionDto(draft));
    });

    defineRoute<VersionParams>(app, contract, 'getVersionManifest', {}, async (request) => manifestDto(await catalog.manifest(request.params.name, request.params.version)));

    defineRoute<{ Params: { name: string; ref: string } }>(app, contract, 'resolveManifest', {}, async (request) => manifestDto(await catalog.resolve(request.params.name, request.params.ref)));
  };
}
