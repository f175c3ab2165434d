/**
 * Image builds (composes) in the shape of osbuild-composer's cloud API: a request becomes a
 * durable job that builds Debian images from packages, boot-tests them and publishes them into
 * the catalog. Pure: states, the published target, and the error catalogue (`GET /errors`),
 * one id per failure class.
 */
export const IMAGE_STATES = ['pending', 'building', 'uploading', 'success', 'failure'] as const;
export type ImageState = (typeof IMAGE_STATES)[number];

/** The compose's overall status (`ComposeStatusValue`): pending until it ended. */
export const composeStatus = (state: ImageState): 'success' | 'failure' | 'pending' => (state === 'success' || state === 'failure' ? state : 'pending');

/** Where the built images go: an imgsrv draft, published and aliased (`upload_options`, an imgsrv extension). */
export interface ComposeTarget {
  image: string;
  version: string;
  publish: boolean;
  alias?: string;
}

/** One built file as it entered the CAS. */
export interface ComposedFile {
  kind: 'disk' | 'squashfs' | 'vm-metadata' | 'container-metadata';
  digest: string;
  size: number;
}

export interface ComposePackage {
  name: string;
  version: string;
  arch: string;
}

export interface ComposeFailure {
  /** Catalogue id (`GET /errors/{id}`). */
  id: number;
  reason: string;
  details?: unknown;
}

export interface Compose {
  id: string;
  /** Who asked: the catalog changes are made on their behalf. */
  principalId: string;
  state: ImageState;
  /** The build request as validated (the pipeline's `BuildRequest`), stored as JSON. */
  request: unknown;
  target: ComposeTarget;
  error?: ComposeFailure;
  files?: ComposedFile[];
  packages?: ComposePackage[];
  cancelRequested: boolean;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
}

export interface CatalogueError {
  id: number;
  code: string;
  reason: string;
}

/**
 * The error catalogue: request refusals (answered at once, with the seed's Error shape) and
 * build failures (a compose's `image_status.error`). Ids are stable: never renumber one.
 */
export const COMPOSE_ERRORS: readonly CatalogueError[] = [
  { id: 1, code: 'unsupported_distribution', reason: 'The distribution is not one this server builds' },
  { id: 2, code: 'unsupported_architecture', reason: 'The architecture is not one this server builds' },
  { id: 3, code: 'unsupported_image_type', reason: 'The image type is not one this server builds' },
  { id: 4, code: 'invalid_request', reason: 'The compose request is not valid' },
  { id: 5, code: 'compose_not_found', reason: 'No compose has this id' },
  { id: 6, code: 'error_not_found', reason: 'No error of the catalogue has this id' },
  { id: 7, code: 'unauthenticated', reason: 'The request needs a valid bearer token' },
  { id: 8, code: 'forbidden', reason: 'The principal may not build images (content-writer)' },
  { id: 9, code: 'metadata_not_ready', reason: 'The compose has not finished successfully; its metadata is not there yet' },
  { id: 10, code: 'compose_finished', reason: 'The compose has already finished; it cannot be cancelled' },
  { id: 11, code: 'target_conflict', reason: 'The target image version exists already or cannot be created' },
  { id: 12, code: 'route_not_found', reason: 'No operation of the compose API has this path' },
  { id: 13, code: 'method_not_allowed', reason: 'The operation does not accept this method' },
  { id: 14, code: 'unsupported_media_type', reason: 'The request body must be application/json' },
  { id: 15, code: 'body_too_large', reason: 'The request body is larger than the server accepts' },
  { id: 16, code: 'compose_publishing', reason: 'The compose is publishing its images; it can no longer be cancelled' },
  { id: 20, code: 'host_tools_missing', reason: 'The build worker lacks a tool it needs' },
  { id: 21, code: 'package_unavailable', reason: 'A requested package could not be found or installed' },
  { id: 22, code: 'rootfs_failed', reason: 'The root file system could not be built' },
  { id: 23, code: 'image_config_failed', reason: 'The image configuration (users, network) could not be applied' },
  { id: 24, code: 'vm_layer_failed', reason: 'The kernel and boot loader could not be installed' },
  { id: 25, code: 'disk_image_failed', reason: 'The disk image could not be made' },
  { id: 26, code: 'container_image_failed', reason: 'The container image could not be made' },
  { id: 27, code: 'metadata_failed', reason: 'The Incus metadata could not be written' },
  { id: 28, code: 'boot_test_failed', reason: 'The built image did not boot' },
  { id: 29, code: 'cancelled', reason: 'The compose was cancelled' },
  { id: 30, code: 'timed_out', reason: 'A build step took longer than its limit' },
  { id: 31, code: 'publish_failed', reason: 'The built images could not be stored or published' },
  { id: 32, code: 'internal', reason: 'An unexpected failure of the build service' },
  { id: 33, code: 'unavailable', reason: 'A service the API needs is unavailable; retry later' },
];

/** The catalogue entry of a code (`internal` for an unknown one). */
export const catalogueError = (code: string): CatalogueError => COMPOSE_ERRORS.find((e) => e.code === code) ?? COMPOSE_ERRORS.find((e) => e.code === 'internal')!;
