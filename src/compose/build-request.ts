/**
 * The normalized inputs of one image build, and their validation. Pure: no I/O, so the
 * compose API can refuse a bad request (400) before a job exists, with the same messages
 * the pipeline would give. The compose service maps the seed's ComposeRequest
 * (`distribution`, `image_request(s)`, `customizations`) onto `BuildRequestInput`.
 */

/** Distributions the mirror serves and the pipeline knows how to make bootable. */
export interface DistributionInfo {
  readonly id: string;
  readonly codename: string;
  readonly version: string;
  /** Extra VM packages this release needs beyond the kernel and loader. */
  readonly vmPackages: readonly string[];
}

export const DISTRIBUTIONS: Readonly<Record<string, DistributionInfo>> = {
  'debian-12': { id: 'debian-12', codename: 'bookworm', version: '12', vmPackages: [] },
  // trixie split systemd-repart (which grows the root partition on first boot) out of systemd.
  'debian-13': { id: 'debian-13', codename: 'trixie', version: '13', vmPackages: ['systemd-repart'] },
};

/** `guest-image`: UEFI qcow2 disk; `container`: Incus container rootfs (squashfs). Both get incus.tar.xz. */
export const IMAGE_TYPES = ['guest-image', 'container'] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];
export const ARCHITECTURES = ['x86_64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export interface BuildUser {
  readonly name: string;
  /** One OpenSSH public key line, written to ~/.ssh/authorized_keys. */
  readonly key: string | null;
  readonly groups: readonly string[];
}

export interface AptRepository {
  readonly baseurl: string;
  readonly suite: string;
  readonly components: readonly string[];
  /** ASCII-armored OpenPGP key, embedded into the deb822 source as Signed-By. */
  readonly gpgKey: string | null;
  /** false: `Trusted: yes` (no signature check); only when the request asked for it. */
  readonly checkGpg: boolean;
}

export interface BuildRequest {
  readonly distribution: DistributionInfo;
  readonly architecture: Architecture;
  readonly imageTypes: readonly ImageType[];
  readonly mirror: string;
  /** debian-security archive, or null for none (default derived from a mirror ending in /debian). */
  readonly securityMirror: string | null;
  /** Requested packages, sorted and unique (see rootfsPackages for the full set). */
  readonly packages: readonly string[];
  readonly users: readonly BuildUser[];
  readonly payloadRepositories: readonly AptRepository[];
  /** Minimum size of the root file system in bytes; 0 = sized from the content. */
  readonly rootMinSize: number;
}

export interface BuildRequestInput {
  distribution: unknown;
  architecture?: unknown;
  imageTypes?: unknown;
  mirror?: unknown;
  securityMirror?: unknown;
  packages?: unknown;
  users?: unknown;
  payloadRepositories?: unknown;
  /** osbuild's `customizations.filesystem`: only `/` is supported (one partition). */
  filesystem?: unknown;
}

export type ParseResult = { ok: true; request: BuildRequest } | { ok: false; problems: string[] };

/**
 * Debian policy §5.6.7: lowercase alphanumerics and + - . , at least two characters,
 * alphanumeric first; here also alphanumeric last, because apt reads a trailing "+" or "-" as
 * install or remove, and at most 128 characters. (apt also reads a name with "." or "+" that no
 * package has as a pattern: the build checks that every requested name is installed as such.)
 */
const PACKAGE_RE = /^[a-z0-9][a-z0-9+.-]{0,126}[a-z0-9]$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const SSH_KEY_RE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$/;
/** A suite name, or a flat repository's path ending in "/" ("./"); never "..". */
const SUITE_RE = /^(?!.*\.\.)[a-z0-9.][a-z0-9.+/_-]{0,63}$/;
const COMPONENT_RE = /^[a-z0-9][a-z0-9._/-]{0,63}$/;
/** Accounts base-passwd and the base system create; a request must not redefine them. */
const RESERVED_USERS = new Set(['root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy',
  'www-data', 'backup', 'list', 'irc', 'gnats', 'nobody', '_apt', 'messagebus', 'sshd', 'systemd-network', 'systemd-resolve',
  'systemd-timesync', 'systemd-journal', 'systemd-coredump', 'incus']);
const MAX_PACKAGES = 500;
const MAX_USERS = 32;
const MAX_REPOS = 16;
const MAX_ROOT_SIZE = 2 * 1024 ** 4;

export function parseBuildRequest(input: BuildRequestInput): ParseResult {
  const problems: string[] = [];
  const p = (msg: string): void => void problems.push(msg);
  unknownKeys(input, ['distribution', 'architecture', 'imageTypes', 'mirror', 'securityMirror', 'packages', 'users', 'payloadRepositories', 'filesystem'], '', p);

  const distribution = typeof input.distribution === 'string' && Object.hasOwn(DISTRIBUTIONS, input.distribution) ? DISTRIBUTIONS[input.distribution] : undefined;
  if (!distribution) p(`distribution: ${JSON.stringify(input.distribution)} is not supported; supported: ${Object.keys(DISTRIBUTIONS).join(', ')}`);

  const arch = input.architecture ?? 'x86_64';
  if (!ARCHITECTURES.includes(arch as Architecture)) p(`architecture: ${JSON.stringify(arch)} is not supported; supported: ${ARCHITECTURES.join(', ')}`);

  const types = input.imageTypes ?? ['guest-image'];
  const imageTypes: ImageType[] = [];
  if (!Array.isArray(types) || types.length === 0) p('imageTypes: must be a non-empty list');
  else for (const [i, t] of types.entries()) {
    if (!IMAGE_TYPES.includes(t as ImageType)) p(`imageTypes[${i}]: ${JSON.stringify(t)} is not supported; supported: ${IMAGE_TYPES.join(', ')}`);
    else if (!imageTypes.includes(t as ImageType)) imageTypes.push(t as ImageType);
  }

  const mirror = httpUrl(input.mirror, 'mirror', p);
  let securityMirror: string | null = null;
  if (input.securityMirror === undefined) securityMirror = mirror?.endsWith('/debian') ? `${mirror}-security` : null;
  else if (input.securityMirror !== null) securityMirror = httpUrl(input.securityMirror, 'securityMirror', p);

  const packages = stringList(input.packages, 'packages', MAX_PACKAGES, p, (s, at) => {
    if (!PACKAGE_RE.test(s)) p(`${at}: ${JSON.stringify(s)} is not a Debian package name (lowercase letters, digits, "+", "-", "."; 2 to 128 characters, a letter or digit first and last)`);
  });

  const users: BuildUser[] = [];
  if (input.users !== undefined) {
    if (!Array.isArray(input.users)) p('users: must be a list');
    else if (input.users.length > MAX_USERS) p(`users: at most ${MAX_USERS}`);
    else for (const [i, u] of (input.users as unknown[]).entries()) {
      const at = `users[${i}]`;
      if (!isObject(u)) { p(`${at}: must be an object`); continue; }
      unknownKeys(u, ['name', 'key', 'groups'], `${at}.`, p);
      const name = u.name;
      if (typeof name !== 'string' || !USER_RE.test(name)) { p(`${at}.name: must match ${USER_RE.source}`); continue; }
      if (RESERVED_USERS.has(name) || name.startsWith('systemd-')) p(`${at}.name: "${name}" is a system account`);
      if (users.some((x) => x.name === name)) p(`${at}.name: "${name}" is given twice`);
      let key: string | null = null;
      if (u.key !== undefined && u.key !== null) {
        if (typeof u.key !== 'string' || !SSH_KEY_RE.test(u.key.trim())) p(`${at}.key: must be one OpenSSH public key line ("ssh-ed25519 AAAA... comment")`);
        else key = u.key.trim();
      }
      const groups = stringList(u.groups, `${at}.groups`, 32, p, (g, gat) => {
        if (!USER_RE.test(g)) p(`${gat}: must match ${USER_RE.source}`);
      });
      users.push({ name, key, groups });
    }
  }

  const payloadRepositories: AptRepository[] = [];
  if (input.payloadRepositories !== undefined) {
    if (!Array.isArray(input.payloadRepositories)) p('payloadRepositories: must be a list');
    else if (input.payloadRepositories.length > MAX_REPOS) p(`payloadRepositories: at most ${MAX_REPOS}`);
    else for (const [i, r] of (input.payloadRepositories as unknown[]).entries()) {
      const at = `payloadRepositories[${i}]`;
      if (!isObject(r)) { p(`${at}: must be an object`); continue; }
      unknownKeys(r, ['baseurl', 'suite', 'components', 'gpgkey', 'checkGpg'], `${at}.`, p);
      const baseurl = httpUrl(r.baseurl, `${at}.baseurl`, p);
      const suite = r.suite ?? distribution?.codename ?? '';
      if (typeof suite !== 'string' || !SUITE_RE.test(suite)) p(`${at}.suite: must match ${SUITE_RE.source}`);
      const components = r.components === undefined ? ['main'] : stringList(r.components, `${at}.components`, 16, p, (c, cat) => {
        if (!COMPONENT_RE.test(c)) p(`${cat}: must match ${COMPONENT_RE.source}`);
      });
      let gpgKey: string | null = null;
      if (r.gpgkey !== undefined && r.gpgkey !== null) {
        if (typeof r.gpgkey !== 'string' || !/^-----BEGIN PGP PUBLIC KEY BLOCK-----\r?\n[\s\S]+\n-----END PGP PUBLIC KEY BLOCK-----\s*$/.test(r.gpgkey) || r.gpgkey.length > 64 * 1024)
          p(`${at}.gpgkey: must be one ASCII-armored OpenPGP public key block (at most 64 KiB)`);
        else gpgKey = r.gpgkey.trim();
      }
      if (r.checkGpg !== undefined && typeof r.checkGpg !== 'boolean') p(`${at}.checkGpg: must be a boolean`);
      if (baseurl) payloadRepositories.push({ baseurl, suite: String(suite), components, gpgKey, checkGpg: r.checkGpg !== false });
    }
  }

  let rootMinSize = 0;
  if (input.filesystem !== undefined) {
    if (!Array.isArray(input.filesystem)) p('filesystem: must be a list');
    else for (const [i, f] of (input.filesystem as unknown[]).entries()) {
      const at = `filesystem[${i}]`;
      if (!isObject(f)) { p(`${at}: must be an object`); continue; }
      unknownKeys(f, ['mountpoint', 'minSize'], `${at}.`, p);
      if (f.mountpoint !== '/') p(`${at}.mountpoint: only "/" is supported (the image has one root file system)`);
      if (typeof f.minSize !== 'number' || !Number.isSafeInteger(f.minSize) || f.minSize < 0 || f.minSize > MAX_ROOT_SIZE)
        p(`${at}.minSize: must be a whole number of bytes between 0 and ${MAX_ROOT_SIZE}`);
      else rootMinSize = Math.max(rootMinSize, f.minSize);
    }
  }

  if (problems.length > 0 || !distribution || !mirror) return { ok: false, problems };
  return {
    ok: true,
    request: {
      distribution, architecture: 'x86_64', imageTypes, mirror, securityMirror,
      packages: [...new Set(packages)].sort(), users, payloadRepositories, rootMinSize,
    },
  };
}

/** Packages every image gets: init, device manager, DNS stub for the DHCP networking. */
export const BASE_PACKAGES = ['systemd-sysv', 'udev', 'systemd-resolved'] as const;

/**
 * The full package set of the base rootfs: the base, what the users need (an SSH key is
 * useless without sshd; key-only users in `sudo` need sudo), and the requested packages.
 * Sorted and unique, because it is part of the rootfs cache key.
 */
export function rootfsPackages(req: BuildRequest): string[] {
  const set = new Set<string>([...BASE_PACKAGES, ...req.packages]);
  if (req.users.some((u) => u.key !== null)) set.add('openssh-server');
  if (req.users.some((u) => u.groups.includes('sudo'))) set.add('sudo');
  return [...set].sort();
}

function httpUrl(v: unknown, at: string, p: (m: string) => void): string | null {
  if (typeof v !== 'string' || v.length > 2048) { p(`${at}: must be an http(s) URL`); return null; }
  let u: URL;
  try { u = new URL(v); } catch { p(`${at}: ${JSON.stringify(v)} is not a URL`); return null; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') { p(`${at}: only http and https URLs are supported`); return null; }
  if (u.search || u.hash || /\s/.test(v)) { p(`${at}: must not carry a query, fragment or spaces`); return null; }
  // Credentials would end up in the image's apt sources and in the compose's manifests.
  if (u.username || u.password) { p(`${at}: must not carry credentials (user:password@); the image would ship them`); return null; }
  return u.href.replace(/\/+$/, '');
}

function stringList(v: unknown, at: string, max: number, p: (m: string) => void, check: (s: string, at: string) => void): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) { p(`${at}: must be a list of strings`); return []; }
  if (v.length > max) { p(`${at}: at most ${max} entries`); return []; }
  const out: string[] = [];
  for (const [i, s] of v.entries()) {
    if (typeof s !== 'string') p(`${at}[${i}]: must be a string`);
    else { check(s, `${at}[${i}]`); out.push(s); }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(o: object, known: readonly string[], prefix: string, p: (m: string) => void): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) p(`${prefix}${k}: unknown field`);
}
