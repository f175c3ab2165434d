import type { FastifyInstance } from 'fastify';
import type { PublishService } from '../../services/publish.ts';
import { publishJobDto } from '../catalog-dto.ts';
import type { Contract } from '../contract.ts';
import { defineRoute } from '../route.ts';

/** Publishing a draft and following its publish job. */
export function publishRoutes(deps: { contract: Contract; publish: PublishService }) {
  const { contract, publish } = deps;
  return (app: FastifyInstance) => {
    defineRoute<{ Params: { name: string; version: string } }>(app, contract, 'publishVersion', { action: 'catalog.publish' }, async (request, reply) =>
      reply.code(202).send(publishJobDto(await publish.publish(request.params.name, request.params.version))),
    );

    defineRoute<{ Params: { job_id: string } }>(app, contract, 'getPublishJob', { action: 'publish-jobs.read' }, async (request) => publishJobDto(await publish.job(request.params.job_id)));

    defineRoute<{ Params: { job_id: string } }>(app, contract, 'retryPublishJob', { action: 'publish-jobs.retry' }, async (request, reply) =>
      reply.code(202).send(publishJobDto(await publish.retry(request.params.job_id))),
    );
  };
}
