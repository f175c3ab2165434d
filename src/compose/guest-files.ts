/**
 * The files the pipeline adds to an image, as data: paths, contents and modes. Pure, so what
 * an image contains can be read (and tested) here without building one. `commonFiles` go
 * into the container and the VM image; `vmFiles` only into the VM.
 */
export interface GuestFile {
  /** Absolute path inside the image. */
  path: string;
  content: string;
  mode: number;
}

/** systemd credential the boot test passes over SMBIOS; the marker unit runs only if it is set. */
export const BOOT_CHECK_CREDENTIAL = 'imgsrv.boot-check';
/** Printed (with the credential's nonce) by the marker unit; scanned for in the raw serial log. */
export const BOOT_MARKER = 'IMGSRV-BOOT-CHECK-PASSED';

/** DHCP on the first wired interfaces (VMs: en*, containers: eth*), hostname and hosts defaults. */
export function commonFiles(): GuestFile[] {
  return [
    {
      path: '/etc/systemd/network/80-imgsrv-dhcp.network',
      mode: 0o644,
      content: '# Added by imgsrv compose: DHCP (v4 and v6) on wired interfaces.\n[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n',
    },
    // Incus templates replace both at instance creation (see incus-metadata.ts).
    { path: '/etc/hostname', mode: 0o644, content: 'debian\n' },
    {
      path: '/etc/hosts',
      mode: 0o644,
      content: '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n',
    },
  ];
}

/**
 * Host keys baked into an image would be shared by every instance made from it; the build
 * deletes them and this unit makes new ones before sshd first starts.
 */
export const SSH_HOSTKEYS_UNIT: GuestFile = {
  path: '/etc/systemd/system/imgsrv-ssh-hostkeys.service',
  mode: 0o644,
  content: `[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
`,
};

export function sudoersFile(users: readonly string[]): GuestFile {
  // Users get no password (key login only), so sudo must not ask for one.
  return { path: '/etc/sudoers.d/90-imgsrv-users', mode: 0o440, content: users.map((u) => `${u} ALL=(ALL) NOPASSWD:ALL\n`).join('') };
}

export interface VmFilesInput {
  rootUuid: string;
}

export function vmFiles(input: VmFilesInput): GuestFile[] {
  return [
    {
      path: '/etc/fstab',
      mode: 0o644,
      // x-systemd.growfs: systemd-growfs grows ext4 online after systemd-repart grew the partition.
      content: `UUID=${input.rootUuid}\t/\text4\trw,discard,errors=remount-ro,x-systemd.growfs\t0\t1\n`,
    },
    {
      // An existing partition matched by type is grown into the free space behind it on every
      // boot (a no-op once it fills the disk): `incus config device set ... size=` just works.
      path: '/etc/repart.d/50-imgsrv-root.conf',
      mode: 0o644,
      content: '[Partition]\nType=root\n',
    },
    {
      // Without FSTYPE initramfs-tools guesses from the build host and may leave out fsck.ext4.
      path: '/etc/initramfs-tools/conf.d/imgsrv.conf',
      mode: 0o644,
      content: 'FSTYPE=ext4\n',
    },
    {
      path: '/etc/udev/rules.d/99-imgsrv-incus-agent.rules',
      mode: 0o644,
      content: 'ACTION=="add", SYMLINK=="virtio-ports/org.linuxcontainers.incus", TAG+="systemd", ENV{SYSTEMD_WANTS}+="incus-agent.service"\n',
    },
    { path: '/etc/systemd/system/incus-agent.service', mode: 0o644, content: INCUS_AGENT_UNIT },
    { path: '/usr/lib/imgsrv/incus-agent-setup', mode: 0o755, content: INCUS_AGENT_SETUP },
    { path: '/etc/systemd/system/imgsrv-boot-check.service', mode: 0o644, content: BOOT_CHECK_UNIT },
    { path: '/usr/lib/imgsrv/boot-check', mode: 0o755, content: BOOT_CHECK_SCRIPT },
  ];
}

/** Units the build enables with `systemctl --root`: common, and VM only. */
export const COMMON_UNITS = ['systemd-networkd.service', 'systemd-resolved.service'];
export const VM_UNITS = ['incus-agent.service', 'imgsrv-boot-check.service'];

/**
 * Incus gives a VM its agent (binary, certificates) on a config drive: an ISO labelled
 * `incus-agent` (current Incus), or a virtiofs / 9p share tagged `config`. The unit starts
 * when the agent's virtio port appears (udev rule) or at boot, copies the agent to a tmpfs
 * and runs it, which makes `incus exec`, `incus file` and templates work.
 */
const INCUS_AGENT_UNIT = `[Unit]
Description=Incus agent (imgsrv compose loader)
Documentation=https://linuxcontainers.org/incus/docs/main/
ConditionPathExists=/dev/virtio-ports/org.linuxcontainers.incus
Before=multi-user.target cloud-init.target cloud-init.service cloud-init-local.service
DefaultDependencies=no

[Service]
Type=notify
WorkingDirectory=-/run/incus_agent
ExecStartPre=/usr/lib/imgsrv/incus-agent-setup
ExecStart=/run/incus_agent/incus-agent
Restart=on-failure
RestartSec=5s
StartLimitInterval=60
StartLimitBurst=10

[Install]
WantedBy=multi-user.target
`;

const INCUS_AGENT_SETUP = `#!/bin/sh
# Copies the Incus agent from the config drive Incus attached into a private tmpfs.
set -eu
PREFIX=/run/incus_agent
MNT=/run/incus_agent.mnt

mkdir -p "$PREFIX" "$MNT"
mountpoint -q "$PREFIX" || mount -t tmpfs -o mode=0700,size=64M tmpfs "$PREFIX"

if [ -e /dev/disk/by-label/incus-agent ] && mount -o ro /dev/disk/by-label/incus-agent "$MNT" 2>/dev/null; then
  :
elif mount -t virtiofs -o ro config "$MNT" 2>/dev/null; then
  :
elif modprobe 9pnet_virtio 2>/dev/null; mount -t 9p -o ro,access=0,trans=virtio,size=1048576 config "$MNT" 2>/dev/null; then
  :
else
  rmdir "$MNT" 2>/dev/null || true
  if [ -x "$PREFIX/incus-agent" ]; then echo "incus-agent-setup: no config drive, reusing the agent in place"; exit 0; fi
  echo "incus-agent-setup: no Incus config drive (label incus-agent, virtiofs or 9p tag config)" >&2
  exit 1
fi

cp -a "$MNT"/. "$PREFIX"/
umount "$MNT"
rmdir "$MNT"
chown -R root:root "$PREFIX"
chmod 0700 "$PREFIX"
[ -x "$PREFIX/incus-agent" ] || { echo "incus-agent-setup: config drive holds no incus-agent" >&2; exit 1; }
`;

/**
 * The boot test's proof. The unit is inert unless the boot-time credential is present (no
 * effect on real instances, so the tested file is the shipped file); the test passes a random
 * nonce and looks for "MARKER nonce" on the serial console: the marker text alone is never
 * printed by anything but this script, and a stale log cannot match a new nonce.
 * It reports facts (root size, addresses) and powers the VM off.
 */
const BOOT_CHECK_UNIT = `[Unit]
Description=imgsrv compose boot check
ConditionCredential=${BOOT_CHECK_CREDENTIAL}
After=multi-user.target systemd-networkd.service systemd-growfs-root.service

[Service]
Type=oneshot
LoadCredential=${BOOT_CHECK_CREDENTIAL}
ExecStart=/usr/lib/imgsrv/boot-check
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`;

const BOOT_CHECK_SCRIPT = `#!/bin/sh
set -u
nonce=$(cat "\${CREDENTIALS_DIRECTORY:-/run/credentials/@system}/${BOOT_CHECK_CREDENTIAL}" 2>/dev/null || echo none)
/lib/systemd/systemd-networkd-wait-online --any --timeout=30 >/dev/null 2>&1 || true
root_bytes=$(df -B1 --output=size / | tail -n 1 | tr -d ' ')
addrs=$(hostname -I 2>/dev/null | tr ' ' ',')
failed=$(systemctl list-units --state=failed --no-legend --plain 2>/dev/null | awk '{print $1}' | tr '\\n' ',')
echo "imgsrv-boot-facts root_bytes=\${root_bytes} addrs=\${addrs} failed_units=\${failed}" > /dev/console
printf '%s-%s %s\\n' IMGSRV-BOOT-CHECK PASSED "$nonce" > /dev/console
systemctl --no-block poweroff
`;

/** The GRUB menu read by Debian's signed GRUB from EFI/debian/grub.cfg on the ESP. */
export function grubConfig(input: { rootUuid: string; cmdline: string }): string {
  // /vmlinuz and /initrd.img are the symlinks Debian's kernel hooks keep pointing at the
  // newest kernel, so a kernel upgrade inside the VM needs no GRUB config update.
  return `set timeout=0
set timeout_style=hidden
search --no-floppy --fs-uuid --set=root ${input.rootUuid}
linux /vmlinuz ${input.cmdline}
initrd /initrd.img
boot
`;
}

/** Kernel command line: serial console last so /dev/console (and the marker) is ttyS0. */
export function kernelCmdline(input: { rootUuid: string; broken: boolean }): string {
  if (input.broken) {
    // Test-only: a root that never appears; panic=-1 makes initramfs-tools reboot at once and
    // the test's -no-reboot ends QEMU, so the failure shows in seconds, not at the timeout.
    return 'root=UUID=00000000-0000-4000-8000-000000000000 ro rootdelay=3 panic=-1 console=tty0 console=ttyS0,115200n8';
  }
  return `root=UUID=${input.rootUuid} ro console=tty0 console=ttyS0,115200n8`;
}
