import { parseBuildRequest, type BuildRequestInput } from '../compose/build-request.ts';
import type { Principal } from '../domain/auth.ts';
import { catalogueError, type Compose, type ComposeTarget } from '../domain/compose.ts';
import { DomainError } from '../domain/errors.ts';
import { COMPOSE_JOB, newJob } from '../domain/job.ts';
import type { MetadataStore } from '../store/metadata-store.ts';
import type { AuditLog } from './audit.ts';
import type { ServiceDeps } from './deps.ts';

export interface ComposeServiceDeps extends Pick<ServiceDeps, 'clock' | 'newId'> {
  store: Pick<MetadataStore, 'insertCompose' | 'getCompose' | 'requestComposeCancel' | 'moveCompose' | 'readComposeLog' | 'getImage' | 'getVersion'>;
  audit: AuditLog;
  /** The Debian mirror builds use unless a request names its own repository (none configured: requests must name one). */
  defaultMirror: string | undefined;
  onJobEnqueued: () => void;
}

export type ComposeService = ReturnType<typeof createComposeService>;

/** A request refused with an entry of the error catalogue (its `code` names the entry). */
const refuse = (code: string, detail: string) => new DomainError('invalid', code, detail);

/** The image types of osbuild's API that this server builds, and the name it gives the Incus container extension. */
const IMAGE_TYPES: Record<string, 'guest-image' | 'container'> = { 'guest-image': 'guest-image', 'incus-container': 'container' };
const SEED_TYPES = ['aws', 'aws-rhui', 'aws-ha-rhui', 'aws-sap-rhui', 'azure', 'azure-rhui', 'edge-commit', 'edge-container', 'edge-installer', 'gcp', 'image-installer', 'vsphere'];
const NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/;
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+:-]{0,127}$/;
const ALIAS = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
function only(value: unknown, keys: readonly string[], at: string): Json {
  if (!isObject(value)) throw refuse('invalid_request', `${at || 'the request'} must be a JSON object`);
  const unknown = Object.keys(value).filter((k) => !keys.includes(k));
  if (unknown.length > 0) throw refuse('invalid_request', `${at ? `${at}: ` : ''}unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  return value;
}

/**
 * Reads the seed's ComposeRequest into the pipeline's build request and the imgsrv target.
 * Every image request must share architecture and repositories (one build makes them all).
 */
export function readComposeRequest(body: unknown, defaults: { mirror: string | undefined; now: Date }): { input: BuildRequestInput; target: ComposeTarget } {
  const r = only(body, ['distribution', 'image_request', 'image_requests', 'customizations', 'koji'], '');
  if (r.koji !== undefined) throw refuse('invalid_request', 'koji: builds are not imported into Koji here');
  if (typeof r.distribution !== 'string') throw refuse('invalid_request', 'distribution: required, e.g. "debian-12"');
  const requests = [...(r.image_request === undefined ? [] : [r.image_request]), ...(Array.isArray(r.image_requests) ? r.image_requests : r.image_requests === undefined ? [] : [null])];
  if (requests.length === 0) throw refuse('invalid_request', 'image_request or image_requests: at least one image request is needed');
  const images = requests.map((ir, i) => only(ir, ['architecture', 'image_type', 'repositories', 'upload_options', 'ostree'], `image_requests[${i}]`));
  for (const [i, ir] of images.entries()) {
    if (ir.ostree !== undefined) throw refuse('invalid_request', `image_requests[${i}].ostree: ostree images are not built here`);
    if (typeof ir.image_type !== 'string' || !Object.hasOwn(IMAGE_TYPES, ir.image_type)) {
      const known = SEED_TYPES.includes(String(ir.image_type)) ? ' (an image type of the osbuild API that this server does not build)' : '';
      throw refuse('unsupported_image_type', `image_requests[${i}].image_type ${JSON.stringify(ir.image_type)} is not supported${known}; supported: ${Object.keys(IMAGE_TYPES).join(', ')}`);
    }
    if (ir.architecture !== images[0]!.architecture) throw refuse('invalid_request', 'every image request of a compose must have the same architecture');
    if (JSON.stringify(ir.repositories) !== JSON.stringify(images[0]!.repositories)) throw refuse('invalid_request', 'every image request of a compose must have the same repositories');
  }
  const repositories = images[0]!.repositories;
  if (repositories !== undefined && (!Array.isArray(repositories) || repositories.length > 1)) throw refuse('invalid_request', 'repositories: at most one, the Debian archive (its baseurl); more go to customizations.payload_repositories');
  const repository = Array.isArray(repositories) && repositories[0] !== undefined ? only(repositories[0], ['baseurl', 'rhsm', 'check_gpg', 'gpgkey', 'ignore_ssl', 'package_sets'], 'repositories[0]') : undefined;
  if (repository?.rhsm === true) throw refuse('invalid_request', 'repositories[0].rhsm: Red Hat subscriptions do not apply to Debian');

  const c = r.customizations === undefined ? {} : only(r.customizations, ['packages', 'users', 'payload_repositories', 'filesystem', 'subscription'], 'customizations');
  if (c.subscription !== undefined) throw refuse('invalid_request', 'customizations.subscription: Red Hat subscriptions do not apply to Debian');
  const users = c.users === undefined ? undefined : Array.isArray(c.users) ? c.users.map((u, i) => only(u, ['name', 'key', 'groups'], `customizations.users[${i}]`)) : c.users;
  const payload = Array.isArray(c.payload_repositories)
    ? c.payload_repositories.map((p, i) => {
        const x = only(p, ['baseurl', 'rhsm', 'check_gpg', 'gpgkey', 'suite', 'components', 'package_sets'], `customizations.payload_repositories[${i}]`);
        return { baseurl: x.baseurl, suite: x.suite, components: x.components, gpgkey: x.gpgkey, checkGpg: x.check_gpg };
      })
    : c.payload_repositories;
  const filesystem = Array.isArray(c.filesystem) ? c.filesystem.map((f, i) => ({ mountpoint: only(f, ['mountpoint', 'min_size'], `customizations.filesystem[${i}]`).mountpoint, minSize: (f as Json).min_size })) : c.filesystem;

  const mirror = repository?.baseurl ?? defaults.mirror;
  if (mirror === undefined) throw refuse('invalid_request', 'repositories[0].baseurl: this server has no default Debian mirror (IMGSRV_COMPOSE_MIRROR); name the archive to build from');
  const input: BuildRequestInput = {
    distribution: r.distribution,
    architecture: images[0]!.architecture,
    imageTypes: images.map((ir) => IMAGE_TYPES[ir.image_type as string]),
    mirror,
    packages: c.packages,
    users,
    payloadRepositories: payload,
    filesystem,
  };
  return { input, target: readTarget(images[0]!.upload_options, r.distribution, defaults.now) };
}

/** The pipeline's field names in a problem, as the request spells them. */
const REQUEST_TERMS: [RegExp, string][] = [
  [/^packages/, 'customizations.packages'],
  [/^users/, 'customizations.users'],
  [/^payloadRepositories/, 'customizations.payload_repositories'],
  [/^filesystem/, 'customizations.filesystem'],
  [/^mirror/, 'repositories[0].baseurl'],
  [/^imageTypes/, 'image_type'],
  [/\.minSize/, '.min_size'],
  [/\.checkGpg/, '.check_gpg'],
];
const inRequestTerms = (problem: string) => REQUEST_TERMS.reduce((text, [from, to]) => text.replace(from, to), problem);

/** `upload_options` (an imgsrv extension): the draft the images become. Defaults: image = distribution, version = build time, published, alias `latest`. */
function readTarget(value: unknown, distribution: string, now: Date): ComposeTarget {
  const o = value === undefined ? {} : only(value, ['image', 'version', 'publish', 'alias'], 'upload_options');
  const image = o.image ?? distribution;
  const version = o.version ?? now.toISOString().replace(/[-:]/g, '').replace('T', '.').slice(0, 13);
  if (typeof image !== 'string' || !NAME.test(image)) throw refuse('invalid_request', 'upload_options.image must be an imgsrv image name ([a-z0-9][a-z0-9._-]{0,127})');
  if (typeof version !== 'string' || !VERSION.test(version)) throw refuse('invalid_request', 'upload_options.version must be an imgsrv version ([A-Za-z0-9][A-Za-z0-9._+:-]{0,127})');
  if (o.publish !== undefined && typeof o.publish !== 'boolean') throw refuse('invalid_request', 'upload_options.publish must be true or false');
  const publish = o.publish !== false;
  const alias = o.alias === null ? undefined : (o.alias ?? (publish ? 'latest' : undefined));
  if (alias !== undefined && (typeof alias !== 'string' || !ALIAS.test(alias))) throw refuse('invalid_request', 'upload_options.alias must be an imgsrv alias name, or null for none');
  if (alias !== undefined && !publish) throw refuse('invalid_request', 'upload_options.alias needs publish: an alias points at a published version');
  return { image, version, publish, ...(alias !== undefined && { alias: alias as string }) };
}

/** Composes: requests in, durable build jobs out; status, logs and cancel for the API. */
export function createComposeService(deps: ComposeServiceDeps) {
  const { store, clock } = deps;

  async function get(id: string): Promise<Compose> {
    const found = await store.getCompose(id);
    if (!found) throw new DomainError('not_found', 'compose_not_found', `no compose has id ${id}`);
    return found;
  }

  return {
    get,

    /** Validates the request (refusing with a catalogue error), then stores it with its build job. */
    async submit(actor: Principal, body: unknown): Promise<Compose> {
      const now = clock.now();
      const { input, target } = readComposeRequest(body, { mirror: deps.defaultMirror, now });
      const parsed = parseBuildRequest(input);
      if (!parsed.ok) {
        const first = parsed.problems[0] ?? 'invalid';
        const code = first.startsWith('distribution') ? 'unsupported_distribution' : first.startsWith('architecture') ? 'unsupported_architecture' : 'invalid_request';
        throw refuse(code, parsed.problems.map(inRequestTerms).join('; '));
      }
      // A compose makes its version: one that exists (a draft of someone's, a published one) is refused.
      const image = await store.getImage(target.image);
      if (image && (await store.getVersion(image.id, target.version))) {
        throw new DomainError('conflict', 'target_conflict', `image ${target.image} already has a version ${target.version}; a compose creates the version it publishes`);
      }
      const id = deps.newId();
      await store.insertCompose({ compose: { id, principalId: actor.id, request: parsed.request, target }, job: newJob(COMPOSE_JOB, deps.newId(), { composeId: id }), now });
      deps.audit({ action: 'compose.submit', actor: actor.id, target: id, image: `${target.image}:${target.version}` });
      deps.onJobEnqueued();
      return get(id);
    },

    /** What a successful compose made: its packages, files and target. */
    async metadata(id: string): Promise<Compose> {
      const compose = await get(id);
      if (compose.state !== 'success') throw new DomainError('conflict', 'metadata_not_ready', `compose ${id} is ${compose.state}; metadata exists once it has succeeded`);
      return compose;
    },

    /** Log lines after `after`. */
    async logs(id: string, after: number, limit: number) {
      await get(id);
      return store.readComposeLog({ id, after, limit });
    },

    /** Stops an unfinished build: its worker aborts it, removes its files and fails it as `cancelled`. */
    async cancel(actor: Principal, id: string): Promise<Compose> {
      const compose = await get(id);
      // Its images are stored and are being published: stopping now would leave half a release.
      if (compose.state === 'uploading' && compose.files) throw new DomainError('conflict', 'compose_publishing', `compose ${id} is publishing its images; it can no longer be cancelled`);
      if (!(await store.requestComposeCancel({ id, now: clock.now() }))) throw new DomainError('conflict', 'compose_finished', `compose ${id} has finished; there is nothing to cancel`);
      // Not started: it fails here; once a worker took it, the worker stops the build and fails it.
      const entry = catalogueError('cancelled');
      await store.moveCompose({ id, from: ['pending'], to: 'failure', error: { id: entry.id, reason: 'the compose was cancelled before its build started' }, now: clock.now() });
      deps.audit({ action: 'compose.cancel', actor: actor.id, target: id });
      return get(id);
    },
  };
}
