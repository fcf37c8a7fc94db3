// A process-wide allocation hook for the tests that must see (or fail) every allocation:
// test_memory (counts them) and test_capi_failure (fails the Nth). Link
// tests/support/alloc_hook.cpp into such a test ONLY: it replaces the global operator
// new / delete (every overload) and interposes malloc, calloc, realloc, free,
// posix_memalign, aligned_alloc, memalign, valloc and pvalloc, forwarding to glibc's
// __libc_* entry points. The dynamic linker binds every library of the process
// (libstdc++, sentencepiece, libc itself) to these definitions, so an allocation
// anywhere, on any thread, is seen. That is why such a test is its own executable.
// Compiled with EMBER_ALLOC_HOOK_SANITIZED (sanitizer builds, test_capi_failure only):
// the sanitizer owns malloc, so only operator new / delete are replaced (on top of the
// sanitizer's malloc) and only they are counted and failed; LeakSanitizer checks at exit
// that no failure path leaked.
#pragma once
#include <cstdint>
#include <string>

namespace ember::testing::alloc {

// Starts counting the allocations of every thread (count and kept call stacks reset).
void Arm();
// Stops counting; returns the number of allocations since Arm().
uint64_t Disarm();
// The call stacks of the first allocations while armed, one frame a line ("" if none).
// Symbols need the executable's dynamic symbol table (ENABLE_EXPORTS in CMake).
std::string Stacks();
// Usable bytes currently allocated (always tracked, armed or not).
int64_t LiveBytes();

// Failure injection: counting from now, the n-th allocation (1-based, any thread) fails
// (malloc & co. return NULL with ENOMEM, operator new throws std::bad_alloc), and every
// other succeeds. n = 0: no failure. FailedAllocations() tells how many were failed
// since the last call to FailNth (0 or 1), AllocationsSinceFailNth() how many were made.
// spared_library: allocations made with a function of that shared library (a substring
// of its path) on the stack are never failed; the next allocation is failed instead.
void FailNth(uint64_t n, const char* spared_library = nullptr);
uint64_t FailedAllocations();
uint64_t AllocationsSinceFailNth();

}  // namespace ember::testing::alloc
