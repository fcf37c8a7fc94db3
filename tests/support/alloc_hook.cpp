// The allocation hook (tests/support/alloc_hook.h): counting, call stacks, failure injection.
#include "support/alloc_hook.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>


extern "C" {
void* __libc_malloc(size_t n);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t n);
void __libc_free(void* p);
void* __libc_memalign(size_t align, size_t n);
}

namespace {

std::atomic<bool> g_armed{false};
std::atomic<uint64_t> g_allocations{0};  // while armed
std::atomic<uint64_t> g_fail_at{0};      // FailNth: the allocation number to fail, 0: none
std::atomic<uint64_t> g_since_fail_nth{0};
std::atomic<uint64_t> g_failed{0};
const char* g_spared_library = nullptr;  // FailNth: allocations made inside it are not failed
std::atomic<int64_t> g_live_bytes{0};    // always: usable bytes currently allocated
constexpr int kTraces = 4, kFrames = 32;
void* g_trace[kTraces][kFrames];
int g_trace_depth[kTraces];
std::atomic<int> g_n_traces{0};
thread_local bool t_tracing = false;  // backtrace() itself may allocate: do not recurse

void on_alloc(void* p) {
  if (!p) return;
  g_live_bytes.fetch_add(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
  if (!g_armed.load(std::memory_order_acquire)) return;
  g_allocations.fetch_add(1);
  if (t_tracing) return;
  const int slot = g_n_traces.fetch_add(1);
  if (slot >= kTraces) return;
  t_tracing = true;
  g_trace_depth[slot] = backtrace(g_trace[slot], kFrames);
  t_tracing = false;
}

void on_free(void* p) {
  if (p) g_live_bytes.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
}

// Whether a function of the calling thread's stack lies in g_spared_library.
bool called_from_spared_library() {
  if (!g_spared_library || t_tracing) return false;
  t_tracing = true;  // backtrace() and dladdr() must not come back here
  void* frames[kFrames];
  const int n = backtrace(frames, kFrames);
  bool spared = false;
  for (int i = 1; i < n && !spared; ++i) {
    Dl_info info;
    spared = dladdr(frames[i], &info) && info.dli_fname && std::strstr(info.dli_fname, g_spared_library);
  }
  t_tracing = false;
  return spared;
}

// Whether this allocation is the one FailNth chose. One spared (made inside the spared
// library) passes the choice on to the next allocation.
bool inject_failure() {
  if (g_fail_at.load(std::memory_order_relaxed) == 0) return false;
  const uint64_t k = g_since_fail_nth.fetch_add(1) + 1;
  if (k != g_fail_at.load()) return false;
  if (called_from_spared_library()) {
    g_fail_at.fetch_add(1);
    return false;
  }
  g_failed.fetch_add(1);
  errno = ENOMEM;
  return true;
}

// Where the memory comes from. Normal builds: glibc's own entry points, under the malloc
// family this file interposes. Sanitizer builds (EMBER_ALLOC_HOOK_SANITIZED): the
// sanitizer owns malloc and cannot be interposed, so only operator new / delete are ours
// and they take memory from the sanitizer's malloc; its LeakSanitizer then reports what a
// failure path leaked at exit.
#if defined(EMBER_ALLOC_HOOK_SANITIZED)
void* raw_malloc(size_t n) { return std::malloc(n); }
void raw_free(void* p) { std::free(p); }
void* raw_aligned(size_t align, size_t n) {
  void* p = nullptr;
  return posix_memalign(&p, align, n) == 0 ? p : nullptr;
}
#else
void* raw_malloc(size_t n) { return __libc_malloc(n); }
void raw_free(void* p) { __libc_free(p); }
void* raw_aligned(size_t align, size_t n) { return __libc_memalign(align, n); }
#endif

void* counted_malloc(size_t n) {
  if (inject_failure()) return nullptr;
  void* p = raw_malloc(n);
  on_alloc(p);
  return p;
}

void* aligned(size_t align, size_t n) {
  if (inject_failure()) return nullptr;
  void* p = raw_aligned(align, n);
  on_alloc(p);
  return p;
}

void counted_free(void* p) {
  on_free(p);
  raw_free(p);
}

// backtrace() loads libgcc's unwinder on its first call (which allocates): do that
// before any test arms the counter.
[[maybe_unused]] const int g_backtrace_ready = [] {
  void* frames[2];
  return backtrace(frames, 2);
}();

}  // namespace

#if !defined(EMBER_ALLOC_HOOK_SANITIZED)
extern "C" {
void* malloc(size_t n) noexcept { return counted_malloc(n); }
void* calloc(size_t n, size_t size) noexcept {
  if (inject_failure()) return nullptr;
  void* p = __libc_calloc(n, size);
  on_alloc(p);
  return p;
}
void* realloc(void* p, size_t n) noexcept {
  if (n != 0 && inject_failure()) return nullptr;  // the old block stays valid, as for a real failure
  const int64_t old = p ? static_cast<int64_t>(malloc_usable_size(p)) : 0;
  void* q = __libc_realloc(p, n);
  if (q || n == 0) g_live_bytes.fetch_sub(old, std::memory_order_relaxed);  // moved, resized or freed
  on_alloc(q);
  return q;
}
void free(void* p) noexcept { counted_free(p); }
int posix_memalign(void** out, size_t align, size_t n) noexcept {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  void* p = aligned(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) noexcept { return aligned(align, n); }
void* memalign(size_t align, size_t n) noexcept { return aligned(align, n); }
void* valloc(size_t n) noexcept { return aligned(static_cast<size_t>(sysconf(_SC_PAGESIZE)), n); }
void* pvalloc(size_t n) noexcept {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return aligned(page, (n + page - 1) / page * page);
}
}  // extern "C"
#endif

// Every form of operator new / delete, through the functions above (counted once, there).
void* operator new(size_t n) {
  if (void* p = counted_malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) { return operator new(n); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n ? n : 1); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n ? n : 1); }
void* operator new(size_t n, std::align_val_t a) {
  if (void* p = aligned(static_cast<size_t>(a), n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) { return operator new(n, a); }
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return aligned(static_cast<size_t>(a), n ? n : 1);
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return aligned(static_cast<size_t>(a), n ? n : 1);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, size_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }


namespace ember::testing::alloc {

void Arm() {
  g_n_traces.store(0);
  g_allocations.store(0);
  g_armed.store(true, std::memory_order_release);
}

uint64_t Disarm() {
  g_armed.store(false, std::memory_order_release);
  return g_allocations.load();
}

std::string Stacks() {
  std::string out;
  const int n = std::min(g_n_traces.load(), kTraces);
  for (int i = 0; i < n; ++i) {
    out += "allocation " + std::to_string(i + 1) + ":\n";
    char** names = backtrace_symbols(g_trace[i], g_trace_depth[i]);  // disarmed: may allocate
    for (int f = 1; names && f < g_trace_depth[i]; ++f) out += std::string("  ") + names[f] + "\n";
    std::free(names);
  }
  return out;
}

int64_t LiveBytes() { return g_live_bytes.load(); }

void FailNth(uint64_t n, const char* spared_library) {
  g_fail_at.store(0);
  g_spared_library = spared_library;
  g_since_fail_nth.store(0);
  g_failed.store(0);
  g_fail_at.store(n);
}

uint64_t FailedAllocations() { return g_failed.load(); }
uint64_t AllocationsSinceFailNth() { return g_since_fail_nth.load(); }

}  // namespace ember::testing::alloc
