import type { CatalogService } from '../../services/catalog.ts';
import { imageDto, manifestDto, versionDto } from './catalog-dto.ts';
import type { ContractRouter } from './route.ts';

type ImageParams = { Params: { name: string } };
type VersionParams = { Params: { name: string; version: string } };

/** `/v1/images`, versions, manifests and refs. */
export function imageRoutes(deps: { catalog: CatalogService; publicUrl?: string }) {
  const { catalog } = deps;
  return (r: ContractRouter) => {
    r.define<{ Body: { name: string; display_name?: string; description?: string } }>('createImage', { action: 'catalog.write' }, async (request, reply) => {
      const { name, display_name: displayName, description } = request.body;
      const image = await catalog.createImage(request.principal!, { name, displayName, description });
      return reply.code(201).header('location', `${deps.publicUrl ?? ''}/v1/images/${image.name}`).send(imageDto(image));
    });

    r.define('listImages', {}, async () => ({ images: (await catalog.listImages()).map(imageDto) }));

    r.define<ImageParams>('getImage', {}, async (request) => imageDto(await catalog.publishedImage(request.params.name)));

    r.define<ImageParams>('listVersions', {}, async (request) => ({ versions: (await catalog.listVersions(request.params.name)).map(versionDto) }));

    r.define<ImageParams & { Body: { version: string } }>('createDraftVersion', { action: 'catalog.write' }, async (request, reply) => {
      const draft = await catalog.createDraft(request.principal!, request.params.name, request.body.version);
      return reply
        .code(201)
        .header('location', `${deps.publicUrl ?? ''}/v1/images/${request.params.name}/versions/${draft.version}`)
        .send(versionDto(draft));
    });

    r.define<VersionParams>('getVersionManifest', {}, async (request) => manifestDto(await catalog.manifest(request.params.name, request.params.version)));

    r.define<{ Params: { name: string; ref: string } }>('resolveManifest', {}, async (request) => manifestDto(await catalog.resolve(request.params.name, request.params.ref)));
  };
}
