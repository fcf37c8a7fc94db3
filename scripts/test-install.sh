#!/usr/bin/env bash
# Installs a configured and built Ember into a temporary prefix and builds the embedding
# example (examples/) against the INSTALLED package, then runs it on octopus-tiny:
#   - CMake route: find_package(ember), static ember::ember (a C program; the package
#     brings sentencepiece, Threads and the C++ runtime), run by ctest, so a cross build
#     runs it under its CMAKE_CROSSCOMPILING_EMULATOR (qemu-aarch64);
#   - pkg-config route (native builds only): cc minimal.c $(pkg-config --cflags --libs
#     ember) against libember.so, and the static library with Libs.private
#     (pkg-config --static).
#   scripts/test-install.sh BUILD_DIR [CMAKE_ARG...]
# CMAKE_ARGs go to the example's configure step (a cross build passes its
# -DCMAKE_TOOLCHAIN_FILE=... -DEMBER_ARM64_SYSROOT=...). Takes a few seconds.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
build=$(cd "$1" && pwd); shift
model=$root/models/octopus-tiny.gguf
functions=$root/models/functions.json

work=$(mktemp -d "${TMPDIR:-/tmp}/ember-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

echo "test-install: cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; exit 1; }
libdir=$(ls -d "$prefix"/lib*/ | head -1); libdir=${libdir%/}
for f in include/ember/ember.h include/ember/ember_tools.h; do
  [ -f "$prefix/$f" ] || { echo "test-install: FAIL: $f not installed" >&2; exit 1; }
done
for f in libember.a libember.so libember-tools.a libember-tools.so cmake/ember/ember-config.cmake \
         cmake/ember/ember-targets.cmake cmake/ember/ember-tools-targets.cmake pkgconfig/ember.pc \
         pkgconfig/ember-tools.pc; do
  [ -e "$libdir/$f" ] || { echo "test-install: FAIL: $libdir/$f not installed" >&2; exit 1; }
done

echo "test-install: find_package(ember) route: examples/ against $prefix $*"
# ember_DIR rather than CMAKE_PREFIX_PATH: a cross toolchain re-roots prefix paths
# under its sysroot (CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY).
cmake -S "$root/examples" -B "$work/example" -DCMAKE_BUILD_TYPE=Release -Dember_DIR="$libdir/cmake/ember" \
      -DEMBER_EXAMPLE_MODEL="$model" -DEMBER_EXAMPLE_FUNCTIONS="$functions" "$@" >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/example" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
(cd "$work/example" && ctest --output-on-failure --no-tests=error)

if [ $# -eq 0 ]; then  # native: the pkg-config route too
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  cc=${CC:-cc}
  echo "test-install: pkg-config route: $cc minimal.c \$(pkg-config --cflags --libs ember)"
  # shellcheck disable=SC2046
  "$cc" -o "$work/minimal-pc" "$root/examples/minimal.c" $(pkg-config --cflags --libs ember)
  LD_LIBRARY_PATH=$libdir "$work/minimal-pc" "$model" "$functions" >"$work/run-pc.log" ||
    { cat "$work/run-pc.log"; exit 1; }
  echo "test-install: pkg-config --static route (libember.a with Libs.private)"
  # shellcheck disable=SC2046
  "$cc" -o "$work/minimal-static" "$root/examples/minimal.c" $(pkg-config --cflags ember) \
        "$libdir/libember.a" $(pkg-config --static --libs-only-l ember | sed 's/-lember //')
  "$work/minimal-static" "$model" "$functions" >"$work/run-static.log" || { cat "$work/run-static.log"; exit 1; }
  if readelf -d "$work/minimal-static" | grep -q 'libember\.so'; then
    echo "test-install: FAIL: the static route linked libember.so" >&2; exit 1
  fi
fi
echo "test-install: ok"
