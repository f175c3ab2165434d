import type { IngestService } from '../services/ingest.ts';
import { INGEST_JOB } from '../services/ingest.ts';
import type { JobHandler } from './runner.ts';

/** The CAS-promotion worker: runs `IngestService.ingest` for the job's upload session. */
export function ingestJob(ingest: IngestService): JobHandler {
  const uploadId = (payload: Record<string, unknown>) => String(payload.upload_id);
  return {
    kind: INGEST_JOB,
    maxAttempts: 8,
    run: (job, signal) => ingest.ingest(uploadId(job.payload), signal),
    giveUp: (job, error) => ingest.giveUp(uploadId(job.payload), error),
  };
}
