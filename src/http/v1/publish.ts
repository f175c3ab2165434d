import type { PublishService } from '../../services/publish.ts';
import { publishJobDto } from './catalog-dto.ts';
import type { ContractRouter } from './route.ts';

/** Publishing a draft and following its publish job. */
export function publishRoutes(deps: { publish: PublishService }) {
  const { publish } = deps;
  return (r: ContractRouter) => {
    r.define<{ Params: { name: string; version: string } }>('publishVersion', { action: 'catalog.publish' }, async (request, reply) =>
      reply.code(202).send(publishJobDto(await publish.publish(request.principal!, request.params.name, request.params.version))),
    );

    r.define<{ Params: { job_id: string } }>('getPublishJob', { action: 'publish-jobs.read' }, async (request) => publishJobDto(await publish.job(request.params.job_id)));

    r.define<{ Params: { job_id: string } }>('retryPublishJob', { action: 'publish-jobs.retry' }, async (request, reply) =>
      reply.code(202).send(publishJobDto(await publish.retry(request.principal!, request.params.job_id))),
    );
  };
}
