import { chmod, chown, mkdir, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BuildRequest } from './build-request.ts';
import { toComposeError } from './errors.ts';
import { COMMON_UNITS, SSH_HOSTKEYS_UNIT, commonFiles, sudoersFile } from './guest-files.ts';
import type { GuestFile } from './guest-files.ts';
import { exec } from './stage-context.ts';
import type { StageContext } from './stage-context.ts';

/**
 * Stage 2: the configuration both image kinds share, applied to an extracted rootfs without
 * a chroot: files written directly, accounts with the host's `useradd/groupadd --prefix`
 * (which edit the image's /etc, not the host's), units enabled with `systemctl --root`.
 * No mounts, no code from the image runs. Idempotent per directory only in the sense that a
 * failed stage leaves a tree the caller throws away.
 */
export interface ImageConfigOptions extends StageContext {
  request: BuildRequest;
  /** Extracted root filesystem. */
  rootDir: string;
}

export async function applyImageConfig(opts: ImageConfigOptions): Promise<void> {
  const { rootDir } = opts;
  try {
    await finalizeTree(rootDir);
    await lockRoot(rootDir);
    await addUsers(opts);
    if (await exists(join(rootDir, 'usr/sbin/sshd'))) {
      // Fresh host keys per instance: drop the build's, generate on first boot.
      for (const n of await readdir(join(rootDir, 'etc/ssh'))) if (/^ssh_host_.*_key(\.pub)?$/.test(n)) await rm(join(rootDir, 'etc/ssh', n));
      await writeGuestFiles(rootDir, [SSH_HOSTKEYS_UNIT]);
      await enableUnits(opts, ['imgsrv-ssh-hostkeys.service']);
    }
    await enableUnits(opts, COMMON_UNITS);
  } catch (err) {
    throw toComposeError(err, 'image-config', 'image_config_failed');
  }
}

/**
 * What every mmdebstrap pass may have overwritten with the build host's copy (resolv.conf,
 * hostname): set back to the image's own. Run after configuration and after the VM pass.
 * /etc/resolv.conf points at systemd-resolved's stub, which follows DHCP's DNS servers.
 */
export async function finalizeTree(rootDir: string): Promise<void> {
  await writeGuestFiles(rootDir, commonFiles());
  const resolv = join(rootDir, 'etc/resolv.conf');
  await rm(resolv, { force: true });
  await symlink('../run/systemd/resolve/stub-resolv.conf', resolv);
}

/** Writes files into the image (parents created 0755, owned by root). */
export async function writeGuestFiles(rootDir: string, files: readonly GuestFile[]): Promise<void> {
  for (const f of files) {
    const target = join(rootDir, f.path);
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    await rm(target, { force: true }); // replace symlinks (e.g. /etc/resolv.conf style) instead of writing through them
    await writeFile(target, f.content, { mode: f.mode });
    await chmod(target, f.mode);
  }
}

export async function enableUnits(ctx: StageContext & { rootDir: string }, units: readonly string[]): Promise<void> {
  await exec(ctx, 'systemctl', ['--root', ctx.rootDir, 'enable', ...units], { timeoutMs: 60_000 });
}

/** root gets no password (`*`): console and SSH login as root are impossible; Incus exec still works. */
async function lockRoot(rootDir: string): Promise<void> {
  const shadow = join(rootDir, 'etc/shadow');
  const lines = (await readFile(shadow, 'utf8')).split('\n');
  const fixed = lines.map((l) => {
    const f = l.split(':');
    if (f[0] !== 'root' || f.length < 3) return l;
    if (f[1] !== '' && (f[1]!.startsWith('*') || f[1]!.startsWith('!'))) return l;
    f[1] = '*';
    return f.join(':');
  });
  await writeFile(shadow, fixed.join('\n'), { mode: 0o640 });
}

/**
 * Users log in with their SSH key only (password `*`); missing groups are created; members
 * of `sudo` get password-less sudo, since they have no password to type.
 */
async function addUsers(opts: ImageConfigOptions): Promise<void> {
  const { rootDir, request } = opts;
  if (request.users.length === 0) return;
  const groupNames = async (): Promise<Set<string>> =>
    new Set((await readFile(join(rootDir, 'etc/group'), 'utf8')).split('\n').map((l) => l.split(':')[0] ?? ''));
  for (const u of request.users) {
    // The user first, so its own group gets the id matching its uid; then missing extra groups.
    await exec(opts, 'useradd', ['--prefix', rootDir, '--create-home', '--shell', '/bin/bash', '--user-group', '--password', '*', u.name], { timeoutMs: 30_000 });
    const have = await groupNames();
    for (const g of u.groups) if (!have.has(g)) await exec(opts, 'groupadd', ['--prefix', rootDir, g], { timeoutMs: 30_000 });
    if (u.groups.length > 0) await exec(opts, 'usermod', ['--prefix', rootDir, '--append', '--groups', u.groups.join(','), u.name], { timeoutMs: 30_000 });
    if (u.key !== null) {
      const { uid, gid, home } = await passwdEntry(rootDir, u.name);
      const sshDir = join(rootDir, home, '.ssh');
      await mkdir(sshDir, { recursive: true, mode: 0o700 });
      await writeFile(join(sshDir, 'authorized_keys'), `${u.key}\n`, { mode: 0o600 });
      await chown(sshDir, uid, gid);
      await chown(join(sshDir, 'authorized_keys'), uid, gid);
    }
  }
  const sudoers = request.users.filter((u) => u.groups.includes('sudo')).map((u) => u.name);
  if (sudoers.length > 0) await writeGuestFiles(rootDir, [sudoersFile(sudoers)]);
}

async function passwdEntry(rootDir: string, name: string): Promise<{ uid: number; gid: number; home: string }> {
  const line = (await readFile(join(rootDir, 'etc/passwd'), 'utf8')).split('\n').find((l) => l.startsWith(`${name}:`));
  const f = line?.split(':');
  if (!f || f.length < 7) throw new Error(`user ${name} missing from the image's /etc/passwd after useradd`);
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? `/home/${name}` };
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}
