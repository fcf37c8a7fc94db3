# Cross toolchain: Debian's g++-aarch64-linux-gnu, arm64 libraries through multiarch
# (/usr/lib/aarch64-linux-gnu) plus an unpacked sentencepiece in ${EMBER_ARM64_SYSROOT}
# (scripts/arm64-sysroot.sh makes it: Debian's arm64 sentencepiece cannot be
# co-installed with the native one). Tests run under qemu-aarch64 (-cpu set with
# EMBER_QEMU_CPU at configure time or QEMU_CPU at run time).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr ${EMBER_ARM64_SYSROOT} ${EMBER_ARM64_SYSROOT}/usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
