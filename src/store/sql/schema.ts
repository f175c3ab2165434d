/**
 * Table shapes shared by every SQL dialect. Times are epoch milliseconds (bigint), sizes
 * are bytes (bigint), structured values are JSON text, so one query builder serves SQLite
 * and PostgreSQL alike. Column names are snake_case as in the contract.
 */
export interface UploadsTable {
  id: string;
  expected_digest: string;
  expected_size: number;
  state: string;
  media_type_hint: string | null;
  filename_hint: string | null;
  part_size: number | null;
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
  updated_at: number;
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

export interface Database {
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  blobs: BlobsTable;
  jobs: JobsTable;
  principals: PrincipalsTable;
  principal_roles: PrincipalRolesTable;
  api_tokens: ApiTokensTable;
}
