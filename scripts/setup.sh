#!/usr/bin/env bash
# Installs every Debian package Ember's build, tests and benchmarks need.
#   scripts/setup.sh          native build + tests (x86-64 or arm64 host)
#   scripts/setup.sh --cross  also the aarch64 cross toolchain, qemu-user and the
#                             arm64 libraries the cross-built tests link against.
#   scripts/setup.sh --fuzz   also clang-16, libFuzzer and llvm-symbolizer (the sanitizer
#                             stage of scripts/test.sh, scripts/fuzz.sh).
# Safe to re-run; skips apt when everything is already installed.
set -euo pipefail
cross=0
fuzz=0
for a in "$@"; do
  case "$a" in
    --cross) cross=1 ;;
    --fuzz) fuzz=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

native=(build-essential cmake pkg-config libeigen3-dev libxsimd-dev nlohmann-json3-dev libcpp-httplib-dev
        libsentencepiece-dev libpcre2-dev libgtest-dev libgmock-dev libbenchmark-dev)
# libpcre2-dev / libpcre2-8-0 and libcpp-httplib-dev are Multi-Arch: same, so their arm64 builds install beside
# the native ones (sentencepiece is not: scripts/arm64-sysroot.sh unpacks it instead).
crosspk=(g++-aarch64-linux-gnu qemu-user libgtest-dev:arm64 libgmock-dev:arm64
         libbenchmark-dev:arm64 libpcre2-dev:arm64 libpcre2-8-0:arm64 libcpp-httplib-dev:arm64)

missing() {  # prints the packages of "$@" that dpkg does not have installed
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || echo "$p"
  done
}

# llvm-16: its llvm-symbolizer names the functions in a sanitizer's report.
fuzzpk=(clang-16 libfuzzer-16-dev libclang-rt-16-dev llvm-16)

want=($(missing "${native[@]}"))
if [ "$fuzz" = 1 ]; then want+=($(missing "${fuzzpk[@]}")); fi
if [ "$cross" = 1 ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    want+=(__update__)
  fi
  want+=($(missing "${crosspk[@]}"))
fi
if [ "${#want[@]}" -gt 0 ]; then
  $SUDO apt-get update -qq
  pk=()
  for p in "${want[@]}"; do [ "$p" = __update__ ] || pk+=("$p"); done
  [ "${#pk[@]}" -eq 0 ] || $SUDO apt-get install -y -qq --no-install-recommends "${pk[@]}"
fi
if [ "$cross" = 1 ]; then
  echo "setup.sh: packages ready (native + aarch64 cross toolchain, qemu-user, arm64 libraries)"
else
  echo "setup.sh: packages ready (native)"
fi
