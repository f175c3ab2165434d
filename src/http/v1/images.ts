import type { Image, ImageVersion } from '../../domain/catalog.ts';
import type { CatalogService } from '../../services/catalog.ts';
import { imageDto, manifestDto, versionDto } from './catalog-dto.ts';
import { jsonRepresentation } from './json-representation.ts';
import type { ContractRouter } from './route.ts';

type ImageParams = { Params: { name: string } };
type VersionParams = { Params: { name: string; version: string } };

/** `/v1/images`, versions, manifests and refs. */
export function imageRoutes(deps: { catalog: CatalogService; publicUrl?: string }) {
  const { catalog } = deps;
  const images = jsonRepresentation((list: Image[]) => ({ images: list.map(imageDto) }));
  const image = jsonRepresentation(imageDto);
  const versions = jsonRepresentation((list: ImageVersion[]) => ({ versions: list.map(versionDto) }));
  const manifest = jsonRepresentation(manifestDto);
  return (r: ContractRouter) => {
    r.define<{ Body: { name: string; display_name?: string; description?: string } }>('createImage', { action: 'catalog.write' }, async (request, reply) => {
      const { name, display_name: displayName, description } = request.body;
      const image = await catalog.createImage(request.principal!, { name, displayName, description });
      return reply.code(201).header('location', `${deps.publicUrl ?? ''}/v1/images/${image.name}`).send(imageDto(image));
    });

    r.define('listImages', {}, async (request, reply) => images(request, reply, await catalog.listImages()));

    r.define<ImageParams>('getImage', {}, async (request, reply) => image(request, reply, await catalog.publishedImage(request.params.name)));

    r.define<ImageParams>('listVersions', {}, async (request, reply) => versions(request, reply, await catalog.listVersions(request.params.name)));

    r.define<ImageParams & { Body: { version: string } }>('createDraftVersion', { action: 'catalog.write' }, async (request, reply) => {
      const draft = await catalog.createDraft(request.principal!, request.params.name, request.body.version);
      return reply
        .code(201)
        .header('location', `${deps.publicUrl ?? ''}/v1/images/${request.params.name}/versions/${draft.version}`)
        .send(versionDto(draft));
    });

    r.define<VersionParams>('getVersionManifest', {}, async (request, reply) => manifest(request, reply, await catalog.manifest(request.params.name, request.params.version)));

    r.define<{ Params: { name: string; ref: string } }>('resolveManifest', {}, async (request, reply) => manifest(request, reply, await catalog.resolve(request.params.name, request.params.ref)));
  };
}
