import type { FastifyInstance } from 'fastify';
import type { AliasService } from '../../services/aliases.ts';
import { aliasDto } from '../catalog-dto.ts';
import type { Contract } from '../contract.ts';
import { defineRoute } from '../route.ts';

type AliasParams = { Params: { name: string; alias: string } };

/** `/v1/images/{name}/aliases`: explicit pointers to published versions. */
export function aliasRoutes(deps: { contract: Contract; aliases: AliasService }) {
  const { contract, aliases } = deps;
  return (app: FastifyInstance) => {
    defineRoute<{ Params: { name: string } }>(app, contract, 'listAliases', {}, async (request) => ({ aliases: (await aliases.list(request.params.name)).map(aliasDto) }));

    defineRoute<AliasParams & { Body: { version: string } }>(app, contract, 'putAlias', { action: 'aliases.write' }, async (request) =>
      aliasDto(await aliases.put(request.params.name, request.params.alias, request.body.version)),
    );

    defineRoute<AliasParams>(app, contract, 'getAlias', {}, async (request) => aliasDto(await aliases.get(request.params.name, request.params.alias)));

    defineRoute<AliasParams>(app, contract, 'deleteAlias', { action: 'aliases.write' }, async (request, reply) => {
      await aliases.remove(request.params.name, request.params.alias);
      return reply.code(204).send();
    });
  };
}
