import type { BuildRequest } from '../../compose/build-request.ts';
import { composeStatus, type Compose, type ComposedFile, type ComposePackage, type ImageState } from '../../domain/compose.ts';
import { COMPOSE_PREFIX } from './errors.ts';

/** The request's image types as the API names them (the pipeline calls the container image `container`). */
export const apiImageTypes = (compose: Compose): string[] => (compose.request as BuildRequest).imageTypes.map((t) => (t === 'container' ? 'incus-container' : t));

const UPLOAD_STATUS: Record<ImageState, string> = { pending: 'pending', building: 'pending', uploading: 'running', success: 'success', failure: 'failure' };

const href = (compose: Compose) => `${COMPOSE_PREFIX}/composes/${compose.id}`;

/** ComposeStatus: all images are built together, so each image status is the compose's. */
export function composeStatusDto(compose: Compose) {
  const { target } = compose;
  const imageStatus = {
    status: compose.state,
    upload_status: {
      status: UPLOAD_STATUS[compose.state],
      type: 'imgsrv',
      options: {
        image: target.image,
        version: target.version,
        published: target.publish,
        ...(target.alias !== undefined && { alias: target.alias }),
        href: `/v1/images/${target.image}/versions/${target.version}`,
      },
    },
    ...(compose.error && { error: { id: compose.error.id, reason: compose.error.reason, ...(compose.error.details !== undefined && { details: compose.error.details }) } }),
  };
  return { id: compose.id, kind: 'ComposeStatus', href: href(compose), status: composeStatus(compose.state), image_status: imageStatus, image_statuses: apiImageTypes(compose).map(() => imageStatus) };
}

/** Debian's `[epoch:]upstream[-revision]` in the seed's NEVRA fields. */
export function packageDto(p: ComposePackage) {
  const colon = p.version.indexOf(':');
  const epoch = colon > 0 ? p.version.slice(0, colon) : undefined;
  const rest = p.version.slice(colon + 1);
  const dash = rest.lastIndexOf('-');
  return { type: 'deb', name: p.name, version: dash > 0 ? rest.slice(0, dash) : rest, release: dash > 0 ? rest.slice(dash + 1) : '', ...(epoch !== undefined && { epoch }), arch: p.arch, sigmd5: '' };
}

const ARTIFACTS: { format: string; primary: ComposedFile['kind']; metadata: ComposedFile['kind'] }[] = [
  { format: 'qcow2', primary: 'disk', metadata: 'vm-metadata' },
  { format: 'squashfs', primary: 'squashfs', metadata: 'container-metadata' },
];

export function composeMetadataDto(compose: Compose) {
  const files = compose.files ?? [];
  const file = (kind: ComposedFile['kind']) => files.find((f) => f.kind === kind);
  const artifacts = ARTIFACTS.flatMap(({ format, primary, metadata }) => {
    const [p, m] = [file(primary), file(metadata)];
    return p && m ? [{ format, digest: p.digest, size: p.size, incus_metadata_digest: m.digest }] : [];
  });
  const { target } = compose;
  return {
    id: compose.id,
    kind: 'ComposeMetadata',
    href: `${href(compose)}/metadata`,
    packages: (compose.packages ?? []).map(packageDto),
    imgsrv: { image: target.image, version: target.version, published: target.publish, ...(target.alias !== undefined && { alias: target.alias }), artifacts },
  };
}

/** One recipe per image: the normalized build request the worker runs (not an osbuild manifest). */
export function composeManifestsDto(compose: Compose) {
  const request = compose.request as BuildRequest;
  return {
    id: compose.id,
    kind: 'ComposeManifests',
    href: `${href(compose)}/manifests`,
    manifests: apiImageTypes(compose).map((imageType) => ({ version: 'imgsrv-compose-1', image_type: imageType, ...request })),
  };
}

/** `finished`: the compose has ended and these are its last lines. */
export function composeLogsDto(compose: Compose, lines: { seq: number; line: string }[], after: number, finished: boolean) {
  return {
    id: compose.id,
    kind: 'ComposeLogs',
    href: `${href(compose)}/logs`,
    image_builds: [{ image_types: apiImageTypes(compose), lines: lines.map((l) => l.line) }],
    next: lines.at(-1)?.seq ?? after,
    finished,
  };
}
