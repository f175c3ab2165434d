import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Cas } from '../blobs/cas.ts';
import type { BuildRequest } from '../compose/build-request.ts';
import { ComposeError, isComposeError } from '../compose/errors.ts';
import { runBuild } from '../compose/run-build.ts';
import { sweepWorkspaces } from '../compose/workspace.ts';
import { catalogueError, type Compose, type ComposedFile } from '../domain/compose.ts';
import { isDomainError } from '../domain/errors.ts';
import { rolesGrant } from '../domain/roles.ts';
import { COMPOSE_JOB } from '../domain/job.ts';
import type { Clock } from '../lib/clock.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import { composeLogSink } from './compose-log.ts';
import { publishComposed, type CatalogWriters } from './compose-publish.ts';
import type { JobHandler } from './runner.ts';

export interface ComposeJobDeps {
  store: Pick<MetadataStore, 'getCompose' | 'moveCompose' | 'appendComposeLog' | 'getPrincipal' | 'recordBlob'>;
  blobs: Pick<Cas, 'storeStream'>;
  catalog: CatalogWriters;
  clock: Clock;
  log: Logger;
  /** Parent of build workspaces and outputs; cleared of dead builds' leftovers when a build starts. */
  workDir: string;
  /** Rootfs tarballs reused across builds with the same inputs. */
  cacheDir: string;
  /** Test only (failpoint `compose-break-boot`): every image gets a kernel command line that cannot boot. */
  breakBoot: boolean;
  failpoint: (name: string) => Promise<void>;
}

/** How often a running build looks whether it was cancelled. */
const CANCEL_POLL_MS = 1000;
/** Built files wait in `workDir/out-<compose id>` until they are in the CAS. */
const OUTPUT_PREFIX = 'out-';

/**
 * What builds killed with their worker left behind: workspaces of dead processes (with the
 * processes they recorded) and outputs of composes no build works on any more. Run when a
 * worker starts, before it claims jobs; a compose still unfinished keeps its outputs until
 * its job runs again (and removes them first).
 */
export async function sweepComposeLeftovers(deps: Pick<ComposeJobDeps, 'store' | 'workDir' | 'log'>): Promise<void> {
  const lines: string[] = [];
  await sweepWorkspaces({ parentDir: deps.workDir, log: (line) => lines.push(line) });
  const names = await readdir(deps.workDir).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(OUTPUT_PREFIX))) {
    const compose = await deps.store.getCompose(name.slice(OUTPUT_PREFIX.length));
    if (compose && compose.state !== 'success' && compose.state !== 'failure') continue;
    await rm(join(deps.workDir, name), { recursive: true, force: true });
    lines.push(`[sweep] removed the outputs ${name} of a finished compose`);
  }
  if (lines.length > 0) deps.log.info({ swept: lines }, 'compose leftovers removed');
}

/**
 * The compose worker: builds the images of a compose (compose/run-build.ts), stores them in
 * the CAS and publishes them through the catalog services as the principal who asked. A
 * build failure (apt, a boot that never reaches its marker, a cancel) fails the compose with
 * its catalogue error and is not retried; after a lost lease (the worker was killed) the job
 * runs again from the start, and the dead build's workspace and processes are removed first.
 */
export function composeJob(deps: ComposeJobDeps): JobHandler<{ composeId: string }> {
  const { store, clock, log } = deps;

  const fail = async (compose: Compose, code: string, message: string, details?: unknown) => {
    const entry = catalogueError(code);
    await store.moveCompose({ id: compose.id, from: ['pending', 'building', 'uploading'], to: 'failure', error: { id: entry.id, reason: message, ...(details !== undefined && { details }) }, now: clock.now() });
    log.warn({ composeId: compose.id, code, reason: message }, 'compose failed');
  };

  /** Builds the images, stores them in the CAS and records them (state `uploading`, with the package list). */
  async function buildAndStore(compose: Compose, outputDir: string, line: (l: string) => void, signal: AbortSignal): Promise<ComposedFile[]> {
    await sweepWorkspaces({ parentDir: deps.workDir, log: line });
    await rm(outputDir, { recursive: true, force: true });
    const built = await runBuild({
      request: compose.request as BuildRequest,
      outputDir,
      workDir: deps.workDir,
      cacheDir: deps.cacheDir,
      log: line,
      signal,
      testBreakKernelCmdline: deps.breakBoot,
    });
    const packages = (built.packages.vm ?? built.packages.container ?? []).map((p) => ({ name: p.name, version: p.version, arch: p.arch }));
    // apt reads a name that no package has as a pattern, and would install whatever matches.
    const installed = new Set(packages.map((p) => p.name));
    const missing = (compose.request as BuildRequest).packages.filter((name) => !installed.has(name));
    if (missing.length > 0) throw new ComposeError('package_unavailable', 'rootfs', `rootfs: no package is named ${missing.join(', ')} (apt took the name as a pattern); name packages exactly`);
    await store.moveCompose({ id: compose.id, from: ['building'], to: 'uploading', packages, now: clock.now() });
    const files = await storeFiles(deps, built.files, signal);
    await store.moveCompose({ id: compose.id, from: ['uploading'], to: 'uploading', files, now: clock.now() });
    line(`== stored ${files.map((f) => `${f.kind} ${f.digest}`).join(', ')}`);
    return files;
  }

  return {
    kind: COMPOSE_JOB,
    maxAttempts: 3,

    async run({ composeId }, { signal }) {
      const compose = await store.getCompose(composeId);
      if (!compose || compose.state === 'success' || compose.state === 'failure') return;
      const sink = composeLogSink({ store, composeId, log });
      const cancel = new AbortController();
      const watch = setInterval(() => {
        store.getCompose(composeId).then((c) => c?.cancelRequested && cancel.abort(new Error('cancelled')), () => {});
      }, CANCEL_POLL_MS);
      const outputDir = join(deps.workDir, `${OUTPUT_PREFIX}${composeId}`);
      try {
        if (compose.cancelRequested) return await fail(compose, 'cancelled', 'the compose was cancelled before it started');
        const actor = await store.getPrincipal(compose.principalId);
        if (!actor) return await fail(compose, 'publish_failed', `principal ${compose.principalId}, who asked for the compose, no longer exists`);
        if (!rolesGrant(actor.roleIds, 'compose.build')) return await fail(compose, 'forbidden', `principal ${compose.principalId}, who asked for the compose, may no longer build images`);
        // Images built and stored before a restart are published as they are: a new build
        // would make other bytes than an artifact the draft may already hold.
        let files = compose.state === 'uploading' ? compose.files : undefined;
        const resuming = files !== undefined;
        if (files) {
          sink.line('== resuming: the images were built and stored before the restart');
        } else {
          // A cancel of the pending compose may have just finished it.
          if (!(await store.moveCompose({ id: composeId, from: ['pending', 'building', 'uploading'], to: 'building', now: clock.now() }))) return;
          files = await buildAndStore(compose, outputDir, sink.line, AbortSignal.any([signal, cancel.signal]));
          await deps.failpoint('compose-stored');
        }
        // Past this point a cancel is too late: the version is being published.
        if (cancel.signal.aborted || (await store.getCompose(composeId))?.cancelRequested) return await fail(compose, 'cancelled', 'the compose was cancelled before its images were published');
        await publishComposed({ catalog: deps.catalog, actor, target: compose.target, files, resuming, log: sink.line, signal });
        await sink.flush();
        await store.moveCompose({ id: composeId, from: ['uploading'], to: 'success', now: clock.now() });
        log.info({ composeId, image: compose.target.image, version: compose.target.version }, 'compose succeeded');
      } catch (e) {
        // Shutdown or a lost lease: the job runs again (here after a restart, or elsewhere), so the compose stays unfinished.
        if (signal.aborted && !cancel.signal.aborted) throw e;
        if (isComposeError(e)) {
          sink.line(`!! ${e.message}`);
          await sink.flush();
          return await fail(compose, cancel.signal.aborted ? 'cancelled' : e.code, e.message, { stage: e.stage });
        }
        if (cancel.signal.aborted) return await fail(compose, 'cancelled', 'the compose was cancelled while its images were stored');
        if (isDomainError(e) && e.kind !== 'unavailable' && e.kind !== 'internal') {
          sink.line(`!! ${e.detail}`);
          await sink.flush();
          return await fail(compose, e.code === 'version_exists' || e.code === 'version_not_draft' ? 'target_conflict' : 'publish_failed', e.detail);
        }
        throw e;
      } finally {
        clearInterval(watch);
        await rm(outputDir, { recursive: true, force: true }).catch(() => {});
        await sink.close();
      }
    },

    async giveUp({ composeId }, error) {
      const compose = await store.getCompose(composeId);
      if (compose) await fail(compose, 'internal', `the build failed repeatedly on an internal error; the server log has the details (${error.slice(0, 200)})`);
    },
  };
}

/** The built files into the CAS (each hashed as it is committed), as the trusted blobs the catalog may reference. */
async function storeFiles(deps: Pick<ComposeJobDeps, 'blobs' | 'store' | 'clock'>, files: Awaited<ReturnType<typeof runBuild>>['files'], signal: AbortSignal): Promise<ComposedFile[]> {
  const stored: ComposedFile[] = [];
  const kinds: [ComposedFile['kind'], { path: string; size: number } | undefined][] = [
    ['disk', files.disk],
    ['vm-metadata', files.vmMetadata],
    ['squashfs', files.squashfs],
    ['container-metadata', files.containerMetadata],
  ];
  for (const [kind, file] of kinds) {
    if (!file) continue;
    const blob = await deps.blobs.storeStream({ body: createReadStream(file.path), maxBytes: file.size, areaId: randomUUID(), signal });
    await deps.store.recordBlob({ digest: blob.digest, size: blob.size, now: deps.clock.now() });
    stored.push({ kind, digest: blob.digest, size: blob.size });
  }
  return stored;
}
