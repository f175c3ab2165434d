import type { PublishStepName } from '../../domain/publish.ts';
import { finalizePublish } from './finalize-publish.ts';
import { incusIndex } from './incus-index.ts';
import type { PublishStepHandler } from './step.ts';
import { validateCatalog } from './validate-catalog.ts';

/** The registry of publish steps by name; the job runs them in the order of `PUBLISH_STEPS`. */
export const PUBLISH_STEP_HANDLERS: Record<PublishStepName, PublishStepHandler> = {
  validate_catalog: validateCatalog,
  incus_index: incusIndex,
  finalize_publish: finalizePublish,
};
