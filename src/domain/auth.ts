/** Who is calling: a user or a service (CI job), holding roles. */
export type PrincipalKind = 'user' | 'service';

export interface Principal {
  id: string;
  kind: PrincipalKind;
  displayName: string;
  attributes: Record<string, unknown>;
  roleIds: string[];
  createdAt: Date;
}

/** An API token row. Only the sha256 of the secret is ever stored. */
export interface ApiToken {
  id: string;
  principalId: string;
  name: string;
  secretHash: string;
  expiresAt: Date;
  revokedAt?: Date;
  lastUsedAt?: Date;
  createdAt: Date;
}
