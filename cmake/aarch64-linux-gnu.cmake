# Cross toolchain for aarch64 Linux on a Debian x86-64 host (see docs/BUILDING.md).
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
#         -DEMBER_ARM64_SYSROOT=$PWD/build-arm64/arm64-sysroot
# Where things come from:
#   compiler, libstdc++            Debian's g++-aarch64-linux-gnu (/usr/aarch64-linux-gnu)
#   gtest, gmock, benchmark,      multiarch arm64 packages (/usr/lib/aarch64-linux-gnu,
#   pcre2 (libpcre2-dev:arm64)    headers shared in /usr/include)
#   Eigen, xsimd                  header-only, /usr/include (xsimd's CMake config lives in
#                                 the HOST multiarch dir on Debian: fallback below)
#   sentencepiece                 ${EMBER_ARM64_SYSROOT}, unpacked by scripts/arm64-sysroot.sh
#                                 (Debian's arm64 sentencepiece cannot be co-installed with
#                                 the native one)
# Tests run under qemu-aarch64 (CMAKE_CROSSCOMPILING_EMULATOR, used by ctest and
# gtest_discover_tests). The CPU model is taken from $QEMU_CPU at run time, so one build
# serves every model; -DEMBER_QEMU_CPU=<model> pins one at configure time instead.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# The sysroot: -DEMBER_ARM64_SYSROOT, else $EMBER_ARM64_SYSROOT, else <build>/arm64-sysroot.
if(NOT EMBER_ARM64_SYSROOT)
  if(DEFINED ENV{EMBER_ARM64_SYSROOT} AND NOT "$ENV{EMBER_ARM64_SYSROOT}" STREQUAL "")
    set(EMBER_ARM64_SYSROOT "$ENV{EMBER_ARM64_SYSROOT}")
  else()
    set(EMBER_ARM64_SYSROOT "${CMAKE_BINARY_DIR}/arm64-sysroot")
  endif()
endif()
set(EMBER_ARM64_SYSROOT "${EMBER_ARM64_SYSROOT}" CACHE PATH "Unpacked arm64 sentencepiece (scripts/arm64-sysroot.sh)")
set(EMBER_QEMU_CPU "" CACHE STRING "qemu-aarch64 -cpu model; empty: \$QEMU_CPU at run time (qemu's default: max)")
# try_compile projects re-read this file: hand them the same settings.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES EMBER_ARM64_SYSROOT EMBER_QEMU_CPU)

get_property(_ember_in_try GLOBAL PROPERTY IN_TRY_COMPILE)
if(NOT _ember_in_try AND NOT EXISTS "${EMBER_ARM64_SYSROOT}/usr/include/sentencepiece_processor.h")
  message(FATAL_ERROR "aarch64 toolchain: no arm64 sentencepiece in EMBER_ARM64_SYSROOT="
          "'${EMBER_ARM64_SYSROOT}'. Run: scripts/arm64-sysroot.sh <build-dir> "
          "(after scripts/setup.sh --cross) and pass -DEMBER_ARM64_SYSROOT=<build-dir>/arm64-sysroot")
endif()

# Search order: the sysroot first (so sentencepiece's arm64 headers/library win over the
# native /usr/include copy), then the cross toolchain, then /usr for multiarch arm64
# libraries (/usr/lib/aarch64-linux-gnu via CMAKE_LIBRARY_ARCHITECTURE), the shared
# /usr/include and the arch-independent CMake configs (/usr/share/eigen3/cmake).
# Host x86-64 libraries in /usr/lib/x86_64-linux-gnu are never searched.
set(CMAKE_FIND_ROOT_PATH "${EMBER_ARM64_SYSROOT}" /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# xsimd is header-only but Debian installs its CMake config in the host's multiarch dir
# (/usr/lib/x86_64-linux-gnu/cmake/xsimd) unless libxsimd-dev:arm64 is installed; the
# config only points at /usr/include, so the host copy is correct for the target too.
if(NOT xsimd_DIR AND NOT EXISTS /usr/lib/aarch64-linux-gnu/cmake/xsimd/xsimdConfig.cmake)
  file(GLOB _ember_xsimd_cfg /usr/lib/*-linux-gnu*/cmake/xsimd/xsimdConfig.cmake /usr/share/cmake/xsimd/xsimdConfig.cmake)
  if(_ember_xsimd_cfg)
    list(GET _ember_xsimd_cfg 0 _ember_xsimd_cfg)
    get_filename_component(_ember_xsimd_dir "${_ember_xsimd_cfg}" DIRECTORY)
    set(xsimd_DIR "${_ember_xsimd_dir}" CACHE PATH "xsimd CMake config (header-only; host copy is fine)")
  endif()
endif()

# Run target binaries (ctest, gtest_discover_tests) under qemu-user. -L makes the
# binaries' /lib/ld-linux-aarch64.so.1 the cross toolchain's loader; the guest's
# LD_LIBRARY_PATH then gives, in this order: the cross toolchain's own libc/libstdc++
# (/usr/aarch64-linux-gnu/lib), the sysroot's sentencepiece, and the multiarch
# arm64 libraries (benchmark, ...). The cross libc MUST come first: libc6:arm64 (pulled in
# by the multiarch packages) is a different glibc build than the cross loader
# (libc6-arm64-cross), and the loader would otherwise pick /lib/aarch64-linux-gnu/libc.so.6
# from the host's ld.so.cache; that mismatch makes every pthread_create (so every
# thread start) spin forever.
find_program(EMBER_QEMU_AARCH64 qemu-aarch64 qemu-aarch64-static)
if(NOT EMBER_QEMU_AARCH64)
  set(EMBER_QEMU_AARCH64 qemu-aarch64)
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${EMBER_QEMU_AARCH64}" -L /usr/aarch64-linux-gnu
    -E "LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib:${EMBER_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu")
if(EMBER_QEMU_CPU)
  list(APPEND CMAKE_CROSSCOMPILING_EMULATOR -cpu ${EMBER_QEMU_CPU})
endif()
