#!/usr/bin/env bash
# Installs the system tools the test suite and benchmark drive for real, when missing.
# Idempotent and quick when everything is present. Debian bookworm; needs root (or sudo).
# A tool that stays missing makes its tests fail loudly; nothing is skipped.
set -euo pipefail

# command (or absolute path of a file)  package  [suite: "" for bookworm, "backports" for
#   bookworm-backports, "trixie-deb" for one .deb of Debian trixie whose dependencies bookworm meets]
REQUIRED=(
  "openssl openssl"
  "curl curl"
  "qemu-img qemu-utils"
  "xz xz-utils"
  "tar tar"
  "jq jq"
  "incus incus-client backports"
  "skopeo skopeo"
  "podman podman"
  "docker-registry docker-registry"
  "oras oras trixie-deb"
  "mksquashfs squashfs-tools"
  "mmdebstrap mmdebstrap"
  "qemu-system-x86_64 qemu-system-x86"
  "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd ovmf"
  "mcopy mtools"
  "mkfs.vfat dosfstools"
  "mkfs.ext4 e2fsprogs"
  "sfdisk fdisk"
  "zstd zstd"
  "ceph-mon ceph-mon"
  "ceph-osd ceph-osd"
  "radosgw radosgw"
  "wrk wrk"
  "strace strace"
)

present() { if [[ $1 == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null 2>&1; fi; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
APT=(apt-get -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends)

# The configured Debian mirror, so that no other host is ever asked.
mirror() {
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "install-test-deps: no Debian mirror configured in /etc/apt" >&2; exit 1; }
  echo "$uri"
}

# Downloads one package of Debian trixie with a private apt state, so that trixie never enters
# /etc/apt, and installs it (oras is packaged only from trixie on; it needs only libc6 >= 2.34).
install_trixie_deb() {
  local pkg=$1 state
  state=$(mktemp -d /tmp/imgsrv-trixie-apt.XXXXXX)
  chmod 755 "$state"
  mkdir -p "$state/etc/sources.list.d" "$state/etc/preferences.d" "$state/lists/partial" "$state/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror) trixie main" > "$state/etc/sources.list"
  local private=(-o "Dir::Etc::SourceList=$state/etc/sources.list" -o "Dir::Etc::SourceParts=$state/etc/sources.list.d"
    -o "Dir::Etc::PreferencesParts=$state/etc/preferences.d" -o "Dir::State::Lists=$state/lists" -o "Dir::Cache::Archives=$state/archives"
    -o "APT::Sandbox::User=root")
  as_root apt-get "${private[@]}" -qq update
  (cd "$state" && as_root apt-get "${private[@]}" -qq download "$pkg")
  as_root "${APT[@]}" install "$state"/"${pkg}"_*.deb >/dev/null
  as_root rm -rf "$state"
}

missing=()
backports=()
trixie=()
for entry in "${REQUIRED[@]}"; do
  read -r cmd pkg suite <<<"$entry"
  present "$cmd" && continue
  case "${suite:-}" in
    backports) backports+=("$pkg") ;;
    trixie-deb) trixie+=("$pkg") ;;
    *) missing+=("$pkg") ;;
  esac
done

if [ "${#missing[@]}" -gt 0 ] || [ "${#backports[@]}" -gt 0 ] || [ "${#trixie[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ "${#backports[@]}" -gt 0 ]; then
    list=/etc/apt/sources.list.d/bookworm-backports.sources
    if [ ! -f "$list" ]; then
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$(mirror)" | as_root tee "$list" >/dev/null
    fi
  fi
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  [ "${#missing[@]}" -eq 0 ] || as_root "${APT[@]}" install "${missing[@]}" >/dev/null
  [ "${#backports[@]}" -eq 0 ] || as_root "${APT[@]}" install -t bookworm-backports "${backports[@]}" >/dev/null
  for pkg in "${trixie[@]}"; do install_trixie_deb "$pkg"; done
  echo "install-test-deps: installed ${missing[*]} ${backports[*]} ${trixie[*]}"
fi

# docker-registry's package enables a service on :5000 where systemd runs; the tests and the
# bench start their own instance on a free port.
if [ -d /run/systemd/system ] && systemctl is-enabled docker-registry >/dev/null 2>&1; then
  as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

for entry in "${REQUIRED[@]}"; do
  read -r cmd _ <<<"$entry"
  present "$cmd" || { echo "install-test-deps: $cmd is still missing" >&2; exit 1; }
done
echo "install-test-deps: all test tools present"
