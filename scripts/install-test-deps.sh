#!/usr/bin/env bash
# Installs the system tools the test suite and benchmark drive for real, when missing.
# Idempotent and quick when everything is present. Debian bookworm; needs root (or sudo).
# A tool that stays missing makes its tests fail loudly; nothing is skipped.
set -euo pipefail

# command  package  [suite: "" for bookworm, "backports" for bookworm-backports]
REQUIRED=(
  "openssl openssl"
  "curl curl"
  "qemu-img qemu-utils"
  "xz xz-utils"
  "tar tar"
  "jq jq"
  "incus incus-client backports"
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
backports=()
for entry in "${REQUIRED[@]}"; do
  read -r cmd pkg suite <<<"$entry"
  command -v "$cmd" >/dev/null 2>&1 && continue
  if [ "${suite:-}" = backports ]; then backports+=("$pkg"); else missing+=("$pkg"); fi
done

if [ "${#missing[@]}" -gt 0 ] || [ "${#backports[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  if [ "${#backports[@]}" -gt 0 ]; then
    list=/etc/apt/sources.list.d/bookworm-backports.sources
    if [ ! -f "$list" ]; then
      uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
      [ -n "$uri" ] || { echo "install-test-deps: no Debian mirror found to add bookworm-backports" >&2; exit 1; }
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" | as_root tee "$list" >/dev/null
    fi
  fi
  as_root apt-get update -qq
  [ "${#missing[@]}" -eq 0 ] || as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "${#backports[@]}" -eq 0 ] || as_root apt-get install -y -qq --no-install-recommends -t bookworm-backports "${backports[@]}" >/dev/null
  echo "install-test-deps: installed ${missing[*]} ${backports[*]}"
fi

for entry in "${REQUIRED[@]}"; do
  read -r cmd _ <<<"$entry"
  command -v "$cmd" >/dev/null 2>&1 || { echo "install-test-deps: $cmd is still missing" >&2; exit 1; }
done
echo "install-test-deps: all test tools present"
