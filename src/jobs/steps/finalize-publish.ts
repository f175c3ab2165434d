import type { PublishStepHandler } from './step.ts';

/** `finalize_publish`: the version becomes published and immutable, with the job's success, at once. */
export const finalizePublish: PublishStepHandler = {
  name: 'finalize_publish',
  completesJob: true,
  async run({ store, clock }, job) {
    await store.finalizePublish({ jobId: job.id, now: clock.now() });
    return 'succeeded';
  },
};
