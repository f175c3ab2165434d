/**
 * Table shapes shared by every SQL dialect. Times are epoch milliseconds (bigint), sizes
 * are bytes (bigint), structured values are JSON text, so one query builder serves SQLite
 * and PostgreSQL alike. Column names are snake_case as in the contract.
 */
export interface UploadsTable {
  id: string;
  expected_digest: string | null;
  expected_size: number | null;
  state: string;
  media_type_hint: string | null;
  filename_hint: string | null;
  part_size: number | null;
  slot_size: number | null;
  repository: string | null;
  failure_reason: string | null;
  revision: number;
  expires_at: number;
  parts_purged_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface UploadPartsTable {
  upload_id: string;
  part_number: number;
  size: number;
  etag: string;
  storage_key: string;
  placed_offset: number | null;
  updated_at: number;
}

export interface UploadPartWritesTable {
  write_id: string;
  upload_id: string;
  part_number: number;
  in_place: number;
  lease_expires_at: number;
  created_at: number;
}

export interface BlobsTable {
  digest: string;
  size: number;
  created_at: number;
}

export interface JobsTable {
  id: string;
  kind: string;
  payload: string;
  state: string;
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  run_after: number;
  last_error: string | null;
  created_at: number;
  updated_at: number;
}

export interface PrincipalsTable {
  id: string;
  kind: string;
  display_name: string;
  attributes: string;
  created_at: number;
  updated_at: number;
}

export interface PrincipalRolesTable {
  principal_id: string;
  role_id: string;
  created_at: number;
}

export interface ApiTokensTable {
  id: string;
  principal_id: string;
  name: string;
  secret_hash: string;
  expires_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  created_at: number;
}

export interface ImagesTable {
  id: string;
  name: string;
  display_name: string | null;
  description: string | null;
  created_at: number;
  updated_at: number;
}

export interface ImageVersionsTable {
  id: string;
  image_id: string;
  version: string;
  state: string;
  published_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface ArtifactsTable {
  id: string;
  version_id: string;
  variant: string;
  operating_system: string;
  architecture: string;
  format: string;
  primary_blob_digest: string;
  primary_blob_size: number;
  primary_media_type: string;
  created_at: number;
  updated_at: number;
}

export interface AttachmentsTable {
  id: string;
  artifact_id: string;
  name: string;
  media_type: string;
  blob_digest: string;
  blob_size: number;
  created_at: number;
  updated_at: number;
}

export interface AliasesTable {
  id: string;
  image_id: string;
  alias: string;
  version_id: string;
  created_at: number;
  updated_at: number;
}

export interface PublishJobsTable {
  id: string;
  version_id: string;
  state: string;
  driver_job_id: string;
  failed_step: string | null;
  reason: string | null;
  started_at: number | null;
  finished_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface PublishStepsTable {
  id: string;
  job_id: string;
  name: string;
  state: string;
  sequence: number;
  attempt_count: number;
  failure_message: string | null;
  started_at: number | null;
  finished_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface IncusIndexTable {
  artifact_id: string;
  combined_sha256: string;
  architecture: string;
  creation_date: number;
  properties: string;
  created_at: number;
}

export interface OidcRulesTable {
  id: string;
  display_name: string;
  issuer_url: string;
  audience: string;
  forwarded_claims: string;
  condition: string;
  assign_role_ids: string;
  enabled: number;
  deleted_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface OidcIdentitiesTable {
  issuer: string;
  subject: string;
  principal_id: string;
  created_at: number;
}

export interface OidcGrantsTable {
  principal_id: string;
  rule_id: string;
  created_at: number;
}

/** A single row (id 1): the feed-visible catalog's change counter and the time of its last change. */
export interface CatalogRevisionTable {
  id: number;
  revision: number;
  changed_at: number;
}

export interface OciRepositoriesTable {
  name: string;
  created_at: number;
}

export interface OciBlobLinksTable {
  repository: string;
  digest: string;
  created_at: number;
}

export interface OciManifestsTable {
  repository: string;
  digest: string;
  media_type: string;
  size: number;
  artifact_type: string | null;
  subject: string | null;
  annotations: string | null;
  created_at: number;
}

export interface OciTagsTable {
  repository: string;
  tag: string;
  digest: string;
  updated_at: number;
}

export interface ServerSecretsTable {
  name: string;
  value: string;
  created_at: number;
}

export interface ComposesTable {
  id: string;
  principal_id: string;
  state: string;
  request: string;
  target: string;
  error: string | null;
  files: string | null;
  packages: string | null;
  cancel_requested: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface ComposeLogsTable {
  compose_id: string;
  seq: number;
  line: string;
}

export interface Database {
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  upload_part_writes: UploadPartWritesTable;
  blobs: BlobsTable;
  jobs: JobsTable;
  principals: PrincipalsTable;
  principal_roles: PrincipalRolesTable;
  api_tokens: ApiTokensTable;
  images: ImagesTable;
  image_versions: ImageVersionsTable;
  artifacts: ArtifactsTable;
  attachments: AttachmentsTable;
  aliases: AliasesTable;
  publish_jobs: PublishJobsTable;
  publish_steps: PublishStepsTable;
  incus_index: IncusIndexTable;
  oidc_rules: OidcRulesTable;
  oidc_identities: OidcIdentitiesTable;
  oidc_grants: OidcGrantsTable;
  catalog_revision: CatalogRevisionTable;
  oci_repositories: OciRepositoriesTable;
  oci_blob_links: OciBlobLinksTable;
  oci_manifests: OciManifestsTable;
  oci_tags: OciTagsTable;
  server_secrets: ServerSecretsTable;
  composes: ComposesTable;
  compose_logs: ComposeLogsTable;
}
