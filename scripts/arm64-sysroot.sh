#!/usr/bin/env bash
# Unpacks Debian's arm64 sentencepiece into BUILD_DIR/arm64-sysroot for the cross build.
#   scripts/arm64-sysroot.sh BUILD_DIR
# Why: libsentencepiece0/libsentencepiece-dev are not Multi-Arch co-installable, so
# `apt-get install libsentencepiece-dev:arm64` would REMOVE the native package. Instead
# the two arm64 .debs are fetched with `apt-get download` (into BUILD_DIR/arm64-debs)
# and unpacked with `dpkg -x`; nothing is installed. The toolchain file
# cmake/aarch64-linux-gnu.cmake looks in the sysroot (EMBER_ARM64_SYSROOT).
# Needs the arm64 apt architecture (scripts/setup.sh --cross). Idempotent: does
# nothing when the sysroot is already complete. Prints the sysroot path last.
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
mkdir -p "$1"
build=$(cd "$1" && pwd)
sysroot="$build/arm64-sysroot"
debs="$build/arm64-debs"
pkgs=(libsentencepiece0:arm64 libsentencepiece-dev:arm64)
stamp="$sysroot/.ember-sysroot-complete"

complete() {
  [ -f "$stamp" ] &&
  [ -f "$sysroot/usr/include/sentencepiece_processor.h" ] &&
  [ -e "$sysroot/usr/lib/aarch64-linux-gnu/libsentencepiece.so" ]
}
if complete; then
  echo "arm64-sysroot: up to date ($(cat "$stamp"))" >&2
  echo "$sysroot"
  exit 0
fi

die() { echo "arm64-sysroot: ERROR: $*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

dpkg --print-foreign-architectures | grep -qx arm64 ||
  die "the arm64 apt architecture is not enabled; run scripts/setup.sh --cross first"

rm -rf "$debs"
mkdir -p "$debs"
download() {  # apt-get download runs in the current directory
  (cd "$debs" && apt-get download -q "${pkgs[@]}") >"$debs/apt.log" 2>&1
}
if ! download; then
  # Fresh containers often ship without package lists: refresh once and retry.
  echo "arm64-sysroot: apt-get download failed, running apt-get update and retrying" >&2
  $SUDO apt-get update -qq >&2 || true
  if ! download; then
    cat "$debs/apt.log" >&2
    die "could not download ${pkgs[*]} with apt-get download (network? arm64 apt sources? see above)"
  fi
fi
shopt -s nullglob
files=("$debs"/libsentencepiece0_*_arm64.deb "$debs"/libsentencepiece-dev_*_arm64.deb)
[ "${#files[@]}" -eq 2 ] || die "expected 2 .debs in $debs, found: ${files[*]:-none}"

rm -rf "$sysroot"
mkdir -p "$sysroot"
for f in "${files[@]}"; do dpkg -x "$f" "$sysroot"; done
names=$(basename -a "${files[@]}" | tr '\n' ' ')
echo "${names% }" >"$stamp"
complete || die "unpacked $debs into $sysroot but sentencepiece_processor.h/libsentencepiece.so are missing"
echo "arm64-sysroot: unpacked $(cat "$stamp") into $sysroot" >&2
echo "$sysroot"
