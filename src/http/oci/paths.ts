/**
 * The registry's paths under `/v2/`. Repository names contain slashes, so the router matches
 * the whole path against the spec's endpoint shapes (end-1 ... end-13) rather than segments.
 */
export type OciPath =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'token' }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; uploadId: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

const SHAPES: [RegExp, (m: RegExpExecArray) => OciPath][] = [
  [/^$/, () => ({ kind: 'base' })],
  [/^_catalog$/, () => ({ kind: 'catalog' })],
  [/^token$/, () => ({ kind: 'token' })],
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, uploadId: m[2]! })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

/** The endpoint a path (after `/v2/`, without its query, already %-decoded) names, or undefined. */
export function parseOciPath(rest: string): OciPath | undefined {
  for (const [shape, make] of SHAPES) {
    const m = shape.exec(rest);
    if (m) return make(m);
  }
  return undefined;
}

/** The methods each endpoint answers (HEAD wherever GET is). */
export const METHODS: Record<OciPath['kind'], readonly string[]> = {
  base: ['GET', 'HEAD'],
  catalog: ['GET', 'HEAD'],
  token: ['GET', 'HEAD'],
  uploads: ['POST'],
  upload: ['GET', 'HEAD', 'PATCH', 'PUT', 'DELETE'],
  blob: ['GET', 'HEAD', 'DELETE'],
  manifest: ['GET', 'HEAD', 'PUT', 'DELETE'],
  tags: ['GET', 'HEAD'],
  referrers: ['GET', 'HEAD'],
};
