import { CommandError } from './run-command.ts';

/**
 * The one error type the build pipeline throws. `code` names the failure class, one per
 * entry of the compose error catalogue (`GET /errors`), so the compose service can map it
 * to its catalogue id without parsing messages; `message` is a sentence for the build log
 * and the compose status, with the tail of the failing tool's output where that is what a
 * user needs (apt's "Unable to locate package", mkfs's "No space left").
 */
export const COMPOSE_ERROR_CODES = [
  /** The request failed validation (see build-request.ts); nothing was started. */
  'invalid_request',
  /** A host tool the pipeline needs is not installed (see host-tools.ts). */
  'host_tools_missing',
  /** apt could not find or install a requested package. */
  'package_unavailable',
  /** The base root filesystem (mmdebstrap) could not be built for another reason. */
  'rootfs_failed',
  /** Users, network or other image configuration could not be applied. */
  'image_config_failed',
  /** The kernel and boot loader could not be installed. */
  'vm_layer_failed',
  /** Partitioning, file system creation or qcow2 conversion failed. */
  'disk_image_failed',
  /** mksquashfs failed. */
  'container_image_failed',
  /** The incus.tar.xz metadata tarball could not be written. */
  'metadata_failed',
  /** The built VM did not print the boot marker before the deadline. */
  'boot_test_failed',
  /** The build was cancelled through its AbortSignal. */
  'cancelled',
  /** A step exceeded its time limit and was killed. */
  'timed_out',
  /** An unexpected failure of the pipeline itself (a bug or the host's disk); see the message. */
  'internal',
] as const;
export type ComposeErrorCode = (typeof COMPOSE_ERROR_CODES)[number];

export class ComposeError extends Error {
  readonly code: ComposeErrorCode;
  /** Pipeline stage that failed (`rootfs`, `vm-layer`, `disk`, ...). */
  readonly stage: string;
  /** Serial console log of a failed boot test, kept outside the removed workspace. */
  readonly serialLog: string | undefined;

  constructor(code: ComposeErrorCode, stage: string, message: string, options?: { cause?: unknown; serialLog?: string }) {
    super(message, options);
    this.name = 'ComposeError';
    this.code = code;
    this.stage = stage;
    this.serialLog = options?.serialLog;
  }
}

export const isComposeError = (e: unknown): e is ComposeError => e instanceof ComposeError;

/**
 * Wraps whatever a stage caught into a ComposeError: a cancelled or timed-out command keeps
 * that class (the user cancelled; a limit was hit), anything else becomes `code`, with the
 * failing tool's last error lines (apt's `E:` lines first) in the message.
 */
export function toComposeError(err: unknown, stage: string, code: ComposeErrorCode): ComposeError {
  if (isComposeError(err)) return err;
  if (err instanceof CommandError) {
    if (err.reason === 'aborted') return new ComposeError('cancelled', stage, `${stage}: cancelled`, { cause: err });
    if (err.reason === 'timeout') return new ComposeError('timed_out', stage, `${stage}: ${err.message}`, { cause: err });
    const errors = err.tail.filter((l) => /(^|\] )(E|Error|error):|^.*: error/.test(l));
    const detail = (errors.length > 0 ? errors : err.tail).slice(-6).join('\n');
    return new ComposeError(code, stage, `${stage}: ${err.message}${detail ? `\n${detail}` : ''}`, { cause: err });
  }
  if ((err as Error)?.name === 'AbortError') return new ComposeError('cancelled', stage, `${stage}: cancelled`, { cause: err });
  return new ComposeError(code, stage, `${stage}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
