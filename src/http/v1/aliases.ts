import type { AliasService } from '../../services/aliases.ts';
import { aliasDto } from './catalog-dto.ts';
import type { ContractRouter } from './route.ts';

type AliasParams = { Params: { name: string; alias: string } };

/** `/v1/images/{name}/aliases`: explicit pointers to published versions. */
export function aliasRoutes(deps: { aliases: AliasService }) {
  const { aliases } = deps;
  return (r: ContractRouter) => {
    r.define<{ Params: { name: string } }>('listAliases', {}, async (request) => ({ aliases: (await aliases.list(request.params.name)).map(aliasDto) }));

    r.define<AliasParams & { Body: { version: string } }>('putAlias', { action: 'aliases.write' }, async (request) =>
      aliasDto(await aliases.put(request.principal!, request.params.name, request.params.alias, request.body.version)),
    );

    r.define<AliasParams>('getAlias', {}, async (request) => aliasDto(await aliases.get(request.params.name, request.params.alias)));

    r.define<AliasParams>('deleteAlias', { action: 'aliases.write' }, async (request, reply) => {
      await aliases.remove(request.principal!, request.params.name, request.params.alias);
      return reply.code(204).send();
    });
  };
}
