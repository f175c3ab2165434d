import type { PublishStepHandler } from './step.ts';

/**
 * `finalize_publish`: "version becomes published and immutable, published_at set". The driver
 * records it with the store's `finalizePublish`, which publishes the version and completes the
 * step and the job in one transaction; there is nothing to compute before.
 */
export const finalizePublish: PublishStepHandler = {
  name: 'finalize_publish',
  run: async () => ({ outcome: 'succeeded', publishes: true }),
};
