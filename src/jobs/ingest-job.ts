import { INGEST_JOB } from '../domain/job.ts';
import type { IngestService } from '../services/ingest.ts';
import type { JobHandler } from './runner.ts';

/** The CAS ingest worker: verifies and commits the job's upload session (`IngestService.ingest`). */
export function ingestJob(ingest: IngestService): JobHandler<{ uploadId: string }> {
  return {
    kind: INGEST_JOB,
    maxAttempts: 8,
    run: ({ uploadId }, { signal }) => ingest.ingest(uploadId, signal),
    giveUp: ({ uploadId }, error) => ingest.giveUp(uploadId, error),
  };
}
