# Sanitizer builds (docs/TESTING.md, "Sanitizers"):
#   -DEMBER_SANITIZE=ON (or address): AddressSanitizer + UndefinedBehaviorSanitizer, every
#                                     finding fatal (-fno-sanitize-recover=all)
#   -DEMBER_SANITIZE=thread:          ThreadSanitizer (the pool, shared models, the server)
# Everything is built with it: library, command, tests, benchmarks. test_memory, which
# replaces the process's allocator (tests/support/alloc_hook.cpp), is not built then: the
# sanitizers own malloc, and the two cannot be interposed together. test_capi_failure is,
# with only operator new / delete hooked (EMBER_ALLOC_HOOK_SANITIZED), under LeakSanitizer.
#   -DEMBER_FUZZ=ON (clang only):    the libFuzzer targets (tests/fuzz/), with ASan+UBSan
set(EMBER_SANITIZE OFF CACHE STRING "OFF, ON/address (ASan+UBSan) or thread (TSan)")
option(EMBER_FUZZ "Build the libFuzzer targets (clang; implies EMBER_SANITIZE=address)" OFF)
if(EMBER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "EMBER_FUZZ needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-16 -DCMAKE_C_COMPILER=clang-16")
  endif()
  set(EMBER_SANITIZE address)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
string(TOLOWER "${EMBER_SANITIZE}" _ember_san)
if(_ember_san STREQUAL "thread")
  set(EMBER_SANITIZER_FLAGS -fsanitize=thread)
elseif(_ember_san STREQUAL "address" OR _ember_san STREQUAL "on" OR _ember_san STREQUAL "1")
  # Not `alignment`: quantized blocks are read where a row puts them, and the kernel tests
  # hand every kernel odd addresses on purpose (as rows of a packed buffer may be); x86-64
  # and AArch64 load such blocks, and the block structs only ask for 2-4 bytes anyway.
  set(EMBER_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize=alignment -fno-sanitize-recover=all)
elseif(NOT _ember_san STREQUAL "off" AND NOT _ember_san STREQUAL "0" AND NOT _ember_san STREQUAL "")
  message(FATAL_ERROR "EMBER_SANITIZE='${EMBER_SANITIZE}': expected OFF, ON, address or thread")
endif()
if(EMBER_SANITIZER_FLAGS)
  # Line tables only (-g1 for GCC): reports name files and lines, and the build is several
  # minutes shorter than with full debug information (CI builds two sanitizer trees).
  # -O1 after the build type's -O3 (the last -O wins): what the sanitizers' own
  # documentation recommends, and half the compile time on the kernels' template-heavy
  # files (kernels/x86/qmatmul_avx2.cpp: 43 s at -O3, 22 s at -O1 under ASan), which CI
  # compiles in two sanitizer trees.
  add_compile_options(${EMBER_SANITIZER_FLAGS} -fno-omit-frame-pointer -O1
                      $<IF:$<CXX_COMPILER_ID:Clang>,-gline-tables-only,-g1>)
  add_link_options(${EMBER_SANITIZER_FLAGS})
  set(EMBER_SANITIZED ON)
  message(STATUS "Ember: sanitizers ${EMBER_SANITIZER_FLAGS}")
else()
  set(EMBER_SANITIZED OFF)
endif()
