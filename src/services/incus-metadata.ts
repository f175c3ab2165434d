import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { Parser, type ReadEntry } from 'tar';
import xz from 'xz-decompress';
import { parse } from 'yaml';
import type { Cas } from '../blobs/cas.ts';
import { describeArtifact, type Artifact } from '../domain/catalog.ts';
import type { Digest } from '../domain/digest.ts';
import { DomainError, isDomainError } from '../domain/errors.ts';
import { incusArchitecture } from '../domain/incus.ts';
import { blobChunks } from './blob-bytes.ts';

const { XzReadableStream } = xz as unknown as { XzReadableStream: new (s: WebReadableStream<Uint8Array>) => WebReadableStream<Uint8Array> };

/** metadata.yaml is small; a tarball that hides it past this much data is refused. */
const MAX_METADATA_BYTES = 1 << 20;
const MAX_SCANNED_BYTES = 256 << 20;

export interface IncusMetadata {
  architecture: string;
  creationDate: number;
  properties: Record<string, string>;
}

const invalid = (detail: string) => new DomainError('invalid', 'incus_metadata_invalid', detail);

/**
 * Reads `metadata.yaml` out of an `incus.tar.xz` stream. What the Incus client needs of it:
 * `architecture` (a string) and a non-zero `creation_date`; `properties` (os, release,
 * description, ...) are kept as strings. Content problems are `invalid` verdicts; an error of
 * the byte source itself passes through unchanged.
 */
export function readIncusMetadata(compressed: AsyncIterable<Buffer>): Promise<IncusMetadata> {
  let sourceError: unknown;
  async function* source() {
    try {
      yield* compressed;
    } catch (e) {
      sourceError = e;
      throw e;
    }
  }
  return new Promise<IncusMetadata>((resolve, reject) => {
    let settled = false;
    const decompressed = Readable.fromWeb(new XzReadableStream(Readable.toWeb(Readable.from(source())) as WebReadableStream<Uint8Array>) as never) as Readable;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      decompressed.destroy();
      outcome();
    };
    const fail = (detail: string) => finish(() => reject(sourceError ?? invalid(detail)));
    let scanned = 0;
    decompressed.on('data', (c: Buffer) => {
      scanned += c.length;
      if (scanned > MAX_SCANNED_BYTES) fail(`incus.tar.xz has no metadata.yaml in its first ${MAX_SCANNED_BYTES >> 20} MiB`);
    });
    // The decoder's own messages are internals; the reason says what the user can act on.
    decompressed.on('error', () => fail('incus.tar.xz is not a valid xz archive (or needs more than 64 MiB of memory to decompress)'));
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        if (entry.path.replace(/^\.\//, '') !== 'metadata.yaml') return entry.resume();
        const chunks: Buffer[] = [];
        let size = 0;
        entry.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_METADATA_BYTES) return fail(`metadata.yaml in incus.tar.xz is larger than ${MAX_METADATA_BYTES} bytes`);
          chunks.push(c);
        });
        entry.on('end', () => {
          try {
            const metadata = interpret(Buffer.concat(chunks).toString('utf8'));
            finish(() => resolve(metadata));
          } catch (e) {
            finish(() => reject(e));
          }
        });
      },
    });
    // Other warnings (an unsupported entry type, say) concern entries we do not read.
    parser.on('warn', (code: string, message: string) => code === 'TAR_BAD_ARCHIVE' && fail(`incus.tar.xz is not a valid tar archive (${message})`));
    parser.on('error', (e: Error) => fail(`incus.tar.xz is not a valid tar archive (${e.message})`));
    parser.on('end', () => fail('incus.tar.xz contains no metadata.yaml'));
    decompressed.pipe(parser);
  });
}

function interpret(text: string): IncusMetadata {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw invalid(`metadata.yaml in incus.tar.xz is not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (typeof doc !== 'object' || doc === null) throw invalid('metadata.yaml in incus.tar.xz is not a mapping');
  const { architecture, creation_date: creationDate, properties } = doc as Record<string, unknown>;
  if (typeof architecture !== 'string' || architecture.trim() === '') throw invalid('metadata.yaml in incus.tar.xz has no architecture');
  if (typeof creationDate !== 'number' || !Number.isSafeInteger(creationDate) || creationDate <= 0) {
    throw invalid('metadata.yaml in incus.tar.xz needs a non-zero integer creation_date (the Incus client drops images without one)');
  }
  const strings = Object.entries(typeof properties === 'object' && properties !== null ? properties : {}).filter((e): e is [string, string] => typeof e[1] === 'string');
  return { architecture, creationDate, properties: Object.fromEntries(strings) };
}

/**
 * Reads and checks the `incus.tar.xz` of a qcow2 (VM) or squashfs (container) artifact: what
 * the Incus client needs of metadata.yaml, for the architecture the artifact declares (which
 * Incus must know). Problems are `invalid` (content) or `not_found` (bytes missing from
 * storage), prefixed with the artifact.
 */
export async function inspectIncusMetadata(blobs: Pick<Cas, 'open'>, artifact: Artifact, digest: Digest, signal: AbortSignal): Promise<IncusMetadata> {
  const about = (e: unknown): never => {
    if (isDomainError(e) && (e.kind === 'invalid' || e.kind === 'not_found')) throw new DomainError(e.kind, e.code, `artifact ${describeArtifact(artifact)}: ${e.detail}`);
    throw e;
  };
  const facts = await readIncusMetadata(blobChunks(blobs, digest, signal)).catch(about);
  const arch = incusArchitecture(artifact.architecture);
  if (!arch) about(invalid(`Incus knows no architecture named ${artifact.architecture}`));
  if (incusArchitecture(facts.architecture) !== arch) about(invalid(`its metadata.yaml is for architecture ${facts.architecture}`));
  return facts;
}
