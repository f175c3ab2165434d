import type { ApiToken, Principal, PrincipalKind } from '../../domain/auth.ts';
import type { BlobRecord } from '../../domain/blob.ts';
import type { Digest } from '../../domain/digest.ts';
import type { Job, JobState, NewJob } from '../../domain/job.ts';
import type { UploadPart, UploadSession, UploadState } from '../../domain/upload.ts';
import { compact, date, num, opt, optDate, optNum } from './row-values.ts';
import type { ApiTokensTable, BlobsTable, JobsTable, PrincipalsTable, UploadPartsTable, UploadsTable } from './schema.ts';

/** Row ↔ domain mapping of the upload, blob, job and auth tables. */

export const uploadFromRow = (r: UploadsTable): UploadSession =>
  compact({
  id: r.id,
  expectedDigest: opt(r.expected_digest) as Digest | undefined,
  expectedSize: optNum(r.expected_size),
  state: r.state as UploadState,
  mediaTypeHint: opt(r.media_type_hint),
  filenameHint: opt(r.filename_hint),
  partSize: optNum(r.part_size),
  slotSize: optNum(r.slot_size),
  repository: opt(r.repository),
  failureReason: opt(r.failure_reason),
  revision: num(r.revision),
  expiresAt: date(r.expires_at),
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
  });

export const uploadToRow = (s: UploadSession): UploadsTable => ({
  id: s.id,
  expected_digest: s.expectedDigest ?? null,
  expected_size: s.expectedSize ?? null,
  state: s.state,
  media_type_hint: s.mediaTypeHint ?? null,
  filename_hint: s.filenameHint ?? null,
  part_size: s.partSize ?? null,
  slot_size: s.slotSize ?? null,
  repository: s.repository ?? null,
  failure_reason: s.failureReason ?? null,
  revision: s.revision,
  expires_at: s.expiresAt.getTime(),
  parts_purged_at: null,
  created_at: s.createdAt.getTime(),
  updated_at: s.updatedAt.getTime(),
});

export const PART_COLUMNS = ['part_number', 'size', 'etag', 'storage_key', 'placed_offset'] as const;

export const partFromRow = (r: Pick<UploadPartsTable, (typeof PART_COLUMNS)[number]>): UploadPart =>
  compact({
    number: num(r.part_number),
    size: num(r.size),
    etag: r.etag,
    key: r.storage_key,
    offset: optNum(r.placed_offset),
  });

export const blobFromRow = (r: BlobsTable): BlobRecord => ({
  digest: r.digest as Digest,
  size: num(r.size),
  createdAt: date(r.created_at),
});

export const jobToRow = (job: NewJob, now: Date): JobsTable => ({
  id: job.id,
  kind: job.kind,
  payload: JSON.stringify(job.payload),
  state: 'queued',
  attempts: 0,
  lease_owner: null,
  lease_expires_at: null,
  run_after: (job.runAfter ?? now).getTime(),
  last_error: null,
  created_at: now.getTime(),
  updated_at: now.getTime(),
});

export const jobFromRow = (r: JobsTable): Job =>
  compact({
  id: r.id,
  kind: r.kind,
  payload: JSON.parse(r.payload) as unknown,
  state: r.state as JobState,
  attempts: num(r.attempts),
  leaseOwner: opt(r.lease_owner),
  leaseExpiresAt: optDate(r.lease_expires_at),
  runAfter: date(r.run_after),
  lastError: opt(r.last_error),
  createdAt: date(r.created_at),
  updatedAt: date(r.updated_at),
  });

export const principalFromRow = (r: PrincipalsTable, roleIds: string[]): Principal => ({
  id: r.id,
  kind: r.kind as PrincipalKind,
  displayName: r.display_name,
  attributes: JSON.parse(r.attributes) as Record<string, unknown>,
  roleIds,
  createdAt: date(r.created_at),
});

export const tokenFromRow = (r: ApiTokensTable): ApiToken =>
  compact({
  id: r.id,
  principalId: r.principal_id,
  name: r.name,
  secretHash: r.secret_hash,
  expiresAt: date(r.expires_at),
  revokedAt: optDate(r.revoked_at),
  lastUsedAt: optDate(r.last_used_at),
  createdAt: date(r.created_at),
  });

export const tokenToRow = (t: ApiToken): ApiTokensTable => ({
  id: t.id,
  principal_id: t.principalId,
  name: t.name,
  secret_hash: t.secretHash,
  expires_at: t.expiresAt.getTime(),
  revoked_at: t.revokedAt?.getTime() ?? null,
  last_used_at: t.lastUsedAt?.getTime() ?? null,
  created_at: t.createdAt.getTime(),
});
