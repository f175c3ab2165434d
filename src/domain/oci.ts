import { isDigest, type Digest } from './digest.ts';
import { DomainError } from './errors.ts';
import { isMediaType } from './media-type.ts';

/**
 * The OCI Distribution Specification 1.1's vocabulary: repository names, tags, the manifest
 * media types and what the registry must read from a manifest (the descriptors it references,
 * its subject, its artifact type). Pure: no I/O.
 */

/** `<name>`: path components of lowercase alphanumerics joined by `.`, `_`, `__` or dashes, separated by `/`. */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** The spec lets registries bound names; 255 is what distribution and most clients accept. */
export const MAX_NAME_LENGTH = 255;
/** `<reference>` as a tag: at most 128 characters. */
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** `<digest>` in general: `algorithm:encoded` (only sha256 is stored, see `isDigest`). */
const ANY_DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export const isRepositoryName = (name: string): boolean => name.length <= MAX_NAME_LENGTH && NAME.test(name);
export const isTag = (tag: string): boolean => TAG.test(tag);
/** Looks like a digest (so it is not a tag), whether or not this registry can use its algorithm. */
export const looksLikeDigest = (ref: string): boolean => ANY_DIGEST.test(ref);

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
/** The empty JSON blob `{}`, the config of artifacts that have none. */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_JSON_DIGEST: Digest = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';

/** Manifest media types this registry stores, and which of them are indexes (they reference manifests, not blobs). */
export const MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST] as const;
const INDEX_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];

/** "Manifests ... MUST be at most 4 MiB": larger ones are refused before they are read in full. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** What the registry needs of a manifest; the bytes themselves are stored exactly as sent. */
export interface ParsedManifest {
  mediaType: string;
  /** Blobs it references (config and layers), which the repository must hold. */
  blobs: Descriptor[];
  /** Manifests it references (an index), which the repository must hold. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** `artifactType`, else the config's media type (how referrers are described and filtered). */
  artifactType?: string;
  annotations?: Record<string, string>;
}

const invalid = (detail: string) => new DomainError('invalid', 'manifest_invalid', detail);

function descriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} is not a descriptor object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || !isMediaType(d.mediaType)) throw invalid(`${where}.mediaType is not a media type`);
  if (typeof d.digest !== 'string') throw invalid(`${where}.digest is missing`);
  if (!isDigest(d.digest)) {
    throw new DomainError('invalid', looksLikeDigest(d.digest) ? 'digest_unsupported' : 'manifest_invalid', `${where}.digest ${JSON.stringify(d.digest.slice(0, 100))} is not a sha256 digest`);
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where}.size is not a non-negative integer`);
  if (d.artifactType !== undefined && (typeof d.artifactType !== 'string' || !isMediaType(d.artifactType))) throw invalid(`${where}.artifactType is not a media type`);
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(typeof d.artifactType === 'string' && { artifactType: d.artifactType }), ...(annotations(d.annotations, where) ?? {}) };
}

function annotations(value: unknown, where: string): { annotations: Record<string, string> } | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw invalid(`${where}.annotations must map strings to strings`);
  }
  return { annotations: value as Record<string, string> };
}

/**
 * Reads a manifest sent as `contentType`. The media type is the `mediaType` field, else the
 * Content-Type (OCI manifests may omit the field); both, when given, must agree.
 * @throws invalid (`manifest_invalid`, `digest_unsupported`) naming what is wrong.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalid(`the manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('the manifest is not a JSON object');
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const declared = typeof m.mediaType === 'string' ? m.mediaType : undefined;
  const type = declared ?? contentType?.split(';')[0]!.trim();
  if (!type || !(MANIFEST_TYPES as readonly string[]).includes(type)) {
    throw invalid(`the manifest media type ${JSON.stringify(type ?? '')} is not one of ${MANIFEST_TYPES.join(', ')}`);
  }
  if (declared && contentType && contentType.split(';')[0]!.trim() !== declared && (MANIFEST_TYPES as readonly string[]).includes(contentType.split(';')[0]!.trim())) {
    throw invalid(`the manifest says mediaType ${declared} but was sent as ${contentType}`);
  }
  const list = (key: string) => {
    if (m[key] === undefined) return [];
    if (!Array.isArray(m[key])) throw invalid(`${key} must be an array`);
    return (m[key] as unknown[]).map((d, i) => descriptor(d, `${key}[${i}]`));
  };
  const subject = m.subject === undefined ? undefined : descriptor(m.subject, 'subject');
  if (m.artifactType !== undefined && (typeof m.artifactType !== 'string' || !isMediaType(m.artifactType))) throw invalid('artifactType is not a media type');
  if (INDEX_TYPES.includes(type)) {
    return { mediaType: type, blobs: [], manifests: list('manifests'), subject, artifactType: m.artifactType as string | undefined, ...annotations(m.annotations, 'manifest') };
  }
  if (m.config === undefined) throw invalid('an image manifest needs a config descriptor');
  const config = descriptor(m.config, 'config');
  return {
    mediaType: type,
    blobs: [config, ...list('layers')],
    manifests: [],
    subject,
    artifactType: (m.artifactType as string | undefined) ?? config.mediaType,
    ...annotations(m.annotations, 'manifest'),
  };
}

/** A manifest as a repository holds it: its bytes are the CAS blob `digest`. */
export interface StoredManifest {
  repository: string;
  digest: Digest;
  mediaType: string;
  size: number;
  artifactType?: string;
  subject?: Digest;
  annotations?: Record<string, string>;
  createdAt: Date;
}
