import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.ts';

export type AuditAction =
  | 'principal.create'
  | 'principal.role.assign'
  | 'principal.role.unassign'
  | 'api_token.issue'
  | 'api_token.revoke'
  | 'oidc_rule.create'
  | 'oidc_rule.update'
  | 'oidc_rule.delete'
  | 'oidc_rule.reconcile'
  | 'oidc.provision'
  | 'image.create'
  | 'version.create'
  | 'artifact.add'
  | 'artifact.remove'
  | 'attachment.add'
  | 'attachment.remove'
  | 'version.publish'
  | 'publish_job.retry'
  | 'alias.put'
  | 'alias.delete'
  | 'oci.manifest.put'
  | 'oci.manifest.delete'
  | 'oci.blob.push'
  | 'oci.blob.mount'
  | 'oci.blob.delete'
  | 'compose.submit'
  | 'compose.cancel';

/** Who did what to whom; details are ids and names, never a secret, a token or a claim. */
export interface AuditEvent {
  action: AuditAction;
  /** The acting principal's id, or `oidc` for provisioning done on a token's behalf. */
  actor: string;
  target: string;
  [detail: string]: unknown;
}

export type AuditLog = (event: AuditEvent) => void;

/**
 * Auth and catalog changes as structured log lines (`"msg":"audit"`, fields under `audit`). They are
 * written at info level even when the server is configured to log less, unless it is silent:
 * an audit trail is not noise.
 */
export function createAuditLog(log: Logger, clock: Clock): AuditLog {
  const audit = log.child({}, { level: log.level === 'silent' ? 'silent' : 'info' });
  return (event) => audit.info({ audit: { ...event, at: clock.now().toISOString() } }, 'audit');
}
