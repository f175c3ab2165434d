import type { ApiToken, Principal, PrincipalKind } from '../domain/auth.ts';
import type { BlobRecord } from '../domain/blob.ts';
import type { Digest } from '../domain/digest.ts';
import type { Job, NewJob } from '../domain/job.ts';
import type { OidcGrantee, OidcIdentity, OidcRule } from '../domain/oidc.ts';
import type { UploadPart, UploadSession, UploadState } from '../domain/upload.ts';
import type { CatalogRepository, FeedRepository, PublishRepository } from './catalog-repository.ts';
import type { ComposeRepository } from './compose-repository.ts';
import type { RegistryRepository } from './registry-repository.ts';

/**
 * The metadata store is the one writer of truth: upload sessions, the trusted-blob index,
 * durable jobs and principals live here. Every method is atomic. Methods that change state
 * are conditional (they name the state they expect) so that several server instances on one
 * database stay correct without in-process locks.
 *
 * Errors: `not_found` / `precondition_failed` / `conflict` as documented per method;
 * `unavailable` when the database cannot be reached. Nothing else escapes.
 */
export interface MetadataStore extends UploadRepository, BlobIndex, JobQueue, AuthRepository, OidcRepository, CatalogRepository, PublishRepository, FeedRepository, RegistryRepository, ComposeRepository {
  /** Resolves when the database answers a trivial query; throws `unavailable` otherwise. */
  ping(): Promise<void>;
  /** Releases connections. Idempotent. */
  close(): Promise<void>;
}

export interface UploadRepository {
  insertUpload(session: UploadSession): Promise<void>;
  getUpload(id: string): Promise<UploadSession | undefined>;
  /** The most recently created `ready` session for a digest and size, if any. */
  findReadyUpload(digest: Digest, size: number): Promise<UploadSession | undefined>;
  /** Parts currently recorded for a session, ascending by number. */
  listUploadParts(uploadId: string): Promise<UploadPart[]>;
  /**
   * Registers a part write under `writeId` with a lease of `leaseMs`, before any byte is
   * written, and decides whether it may write in place (`place`): only when the session's slot
   * size is `place.slotSize` (set now when unknown and `learnsSlotSize`), and no held part and no
   * live write occupies that part number in place. Every instance sees the registered writes.
   * @throws not_found for an unknown session; precondition_failed when it does not accept parts.
   */
  beginPartWrite(input: {
    uploadId: string;
    partNumber: number;
    writeId: string;
    place?: { offset: number; slotSize: number; learnsSlotSize: boolean };
    leaseMs: number;
    now: Date;
  }): Promise<{ inPlace: boolean }>;
  /**
   * Registers a write that appends to the session (an OCI chunk): the next part number, in
   * place at the end of what the session holds, which must be `at` when the client said where.
   * @throws range_not_satisfiable (`chunk_out_of_order`) when `at` is not the end, or another
   * write is still in flight; not_found; precondition_failed when the session does not accept parts.
   */
  beginAppend(input: { uploadId: string; writeId: string; at?: number; leaseMs: number; now: Date }): Promise<{ partNumber: number; offset: number }>;
  /** Extends a write's lease; false when the write is unknown or its session no longer accepts parts (the writer must stop). */
  renewPartWrite(input: { writeId: string; leaseMs: number; now: Date }): Promise<boolean>;
  /** Forgets a write that ended without a part (failed, aborted, refused). Idempotent. */
  endPartWrite(writeId: string): Promise<void>;
  /** Writes of the session whose lease has not lapsed at `now`: each may still be writing bytes. */
  countPartWrites(input: { uploadId: string; now: Date }): Promise<number>;
  /**
   * Records (or replaces) a part, ends its write `writeId` (if any), and moves the session to
   * `uploading`, bumping its revision, atomically. Returns the part it replaced, whose bytes
   * the caller now owns and should delete.
   * @throws not_found for an unknown session; precondition_failed when the session does not
   * accept parts at `now` (see `assertAcceptsParts`); payload_too_large when the session would
   * hold more bytes than it expects (see `assertFitsExpectedSize`).
   */
  putUploadPart(input: { uploadId: string; part: UploadPart; writeId?: string; now: Date }): Promise<{ replaced?: UploadPart }>;
  /**
   * Moves an `uploading` session at exactly `revision` to `completed`, keeps only the given
   * parts, records the digest and size it must have (`expected`, for a session that learns
   * them now) and enqueues the ingest job, all at once. Returns false (and changes nothing) when
   * the session moved on or a part was written since the caller read it.
   */
  completeUpload(input: { uploadId: string; revision: number; parts: readonly UploadPart[]; job: NewJob; expected?: { digest: Digest; size: number }; now: Date }): Promise<boolean>;
  /**
   * Moves a session from one of `from` to `to`, setting the failure reason (or clearing it).
   * Returns the updated session, or undefined when it was not in one of `from`.
   */
  transitionUpload(input: { uploadId: string; from: readonly UploadState[]; to: UploadState; reason?: string; now: Date }): Promise<UploadSession | undefined>;
  /**
   * Records the verified blob and moves the session `ingesting` → `ready`, atomically.
   * Idempotent: recording a blob that exists already keeps the first record.
   * @throws invalid (`size_mismatch`) when the digest is recorded with another size.
   */
  markUploadReady(input: { uploadId: string; blob: { digest: Digest; size: number }; now: Date }): Promise<void>;
  /** Whether an upload session that is not finished expects this digest and size. */
  hasLiveUpload(input: { digest: Digest; size: number; now: Date }): Promise<boolean>;
  /** Open sessions whose `expiresAt` has passed become `aborted`; returns their ids. */
  expireUploads(input: { now: Date; reason: string; limit: number }): Promise<string[]>;
  /** Terminal sessions whose parts have not been removed from the blob store yet. */
  listUnpurgedUploads(limit: number): Promise<string[]>;
  /** Notes that the session's parts are gone from the blob store. Idempotent. */
  markUploadPurged(input: { uploadId: string; now: Date }): Promise<void>;
}

export interface BlobIndex {
  getBlob(digest: Digest): Promise<BlobRecord | undefined>;
  /**
   * Records a blob the CAS verified outside an upload session (a manifest). Idempotent.
   * @throws invalid (`size_mismatch`) when the digest is recorded with another size.
   */
  recordBlob(input: { digest: Digest; size: number; now: Date }): Promise<void>;
}

export interface JobQueue {
  enqueueJob(job: NewJob & { now: Date }): Promise<void>;
  getJob(id: string): Promise<Job | undefined>;
  /**
   * Claims one runnable job of the given kinds for `owner`: a queued job whose `runAfter` has
   * come, or a running job whose lease has lapsed. Two claimers never get the same job.
   */
  claimJob(input: { kinds: readonly string[]; owner: string; leaseMs: number; now: Date }): Promise<Job | undefined>;
  /** Extends the lease; false when `owner` no longer holds the job (the caller must stop). */
  renewJobLease(input: { id: string; owner: string; leaseMs: number; now: Date }): Promise<boolean>;
  /** Finishes a job held by `owner`: succeeded, failed for good, or queued again at `retryAt`. */
  finishJob(input: { id: string; owner: string; now: Date } & ({ outcome: 'succeeded' } | { outcome: 'failed'; error: string } | { outcome: 'retry'; error: string; retryAt: Date })): Promise<void>;
  /** Owners that hold a lease on a running job (used to find leases of dead processes). */
  listLeaseOwners(): Promise<string[]>;
  /** Puts every running job of `owner` back in the queue at once. Returns how many. */
  releaseLeases(input: { owner: string; now: Date }): Promise<number>;
}

/**
 * What removing a role did: `last_holder` means nothing changed because the principal is the
 * only holder of the guarded role (the last `auth-manager` must not lock everyone out).
 */
export type RoleRemoval = 'removed' | 'not_held' | 'last_holder';

export interface AuthRepository {
  getPrincipal(id: string): Promise<Principal | undefined>;
  /** Every principal, oldest first. */
  listPrincipals(): Promise<Principal[]>;
  /** Principals holding a role, oldest first. */
  listPrincipalsWithRole(roleId: string): Promise<Principal[]>;
  /** @throws conflict when the id exists. */
  insertPrincipal(input: { id: string; kind: PrincipalKind; displayName: string; attributes: Record<string, unknown>; now: Date }): Promise<void>;
  /** Idempotent. */
  grantRole(input: { principalId: string; roleId: string; now: Date }): Promise<void>;
  /** Removes a role, unless that would leave `guardRoleId` without a holder (see `RoleRemoval`). */
  revokeRole(input: { principalId: string; roleId: string; guardRoleId: string; now: Date }): Promise<RoleRemoval>;
  /** @throws conflict when the id exists. */
  insertApiToken(token: ApiToken): Promise<void>;
  getApiToken(id: string): Promise<ApiToken | undefined>;
  /** A principal's tokens (revoked and expired ones included), oldest first. */
  listApiTokens(principalId: string): Promise<ApiToken[]>;
  /** Revokes a token at `now` unless it is revoked already; returns it, or undefined when unknown. */
  revokeApiToken(input: { id: string; now: Date }): Promise<ApiToken | undefined>;
  /** Sets `lastUsedAt` to `now` when it is unset or before `staleBefore` (coalesced writes). */
  touchApiToken(input: { id: string; now: Date; staleBefore: Date }): Promise<void>;
  /**
   * Extends an expired, unrevoked token whose secret hash equals `secretHash` until
   * `expiresAt`. Returns whether it did; a revoked token is never brought back.
   */
  renewExpiredApiToken(input: { id: string; secretHash: string; expiresAt: Date; now: Date }): Promise<boolean>;
  /**
   * Creates principal, roles and token in one transaction, unless some principal holding
   * `roleId` already exists. Returns whether it created them; safe against concurrent starts.
   */
  bootstrapPrincipal(input: { principal: { id: string; kind: PrincipalKind; displayName: string; attributes: Record<string, unknown> }; roleIds: readonly string[]; guardRoleId: string; token: ApiToken; now: Date }): Promise<boolean>;
}

export interface OidcRepository {
  /** Rules that are not deleted, oldest first. */
  listOidcRules(): Promise<OidcRule[]>;
  /** Enabled rules whose `issuerUrl` equals `issuer`, oldest first. */
  listEnabledOidcRules(issuer: string): Promise<OidcRule[]>;
  /** A rule by id, deleted ones included (they carry `deletedAt`). */
  getOidcRule(id: string): Promise<OidcRule | undefined>;
  /**
   * Inserts a rule, or revives a deleted rule with the same id (its grants stay, to be judged
   * by the new condition). @throws conflict when a rule that is not deleted has that id.
   */
  insertOidcRule(rule: OidcRule): Promise<void>;
  /** Replaces the fields of a rule that is not deleted (`createdAt` stays); false when there is none. */
  updateOidcRule(rule: OidcRule): Promise<boolean>;
  /** Marks a rule deleted; false when there is no such rule or it is deleted already. */
  deleteOidcRule(input: { id: string; now: Date }): Promise<boolean>;
  /**
   * Finds the service principal of an OIDC identity, creating it (with `newPrincipalId` and
   * `displayName`) on first use; sets its attributes to `claims`, records that `ruleIds` admitted
   * it and grants `roleIds`, all at once. Idempotent.
   */
  provisionOidcPrincipal(input: {
    identity: OidcIdentity;
    newPrincipalId: string;
    displayName: string;
    claims: Record<string, unknown>;
    ruleIds: readonly string[];
    roleIds: readonly string[];
    now: Date;
  }): Promise<{ principal: Principal; created: boolean }>;
  /** Principals a rule admitted, with their identity and every rule that admitted them. */
  listOidcGrantees(ruleId: string): Promise<OidcGrantee[]>;
  /**
   * Forgets that `ruleId` admitted the principal and removes `roleIds` from it, at once; changes
   * nothing and answers `last_holder` when that would leave `guardRoleId` without a holder.
   */
  revokeOidcGrant(input: { principalId: string; ruleId: string; roleIds: readonly string[]; guardRoleId: string; now: Date }): Promise<'removed' | 'last_holder'>;
}
