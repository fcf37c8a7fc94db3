#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ember {

Status MappedFile::Open(const std::string& path, std::unique_ptr<MappedFile>* out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    return (e == ENOENT ? NotFound : IoError)(path + ": cannot open: " + std::strerror(e));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return IoError(path + ": fstat failed: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path + ": not a regular file");
  }
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->path_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return IoError(path + ": mmap failed: " + std::strerror(e));
    }
    f->data_ = static_cast<const uint8_t*>(p);
    f->owned_ = true;
  }
  ::close(fd);
  *out = std::move(f);
  return Status::Ok();
}

std::unique_ptr<MappedFile> MappedFile::FromMemory(const void* data, size_t size, std::string name) {
  std::unique_ptr<MappedFile> f(new MappedFile());
  f->data_ = static_cast<const uint8_t*>(data);
  f->size_ = size;
  f->path_ = std::move(name);
  return f;
}

MappedFile::~MappedFile() {
  if (owned_ && data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

size_t MappedFile::Release(const uint8_t* p, size_t n) const {
  if (!owned_ || p < data_ || n == 0 || p + n > data_ + size_) return 0;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  if (last <= first) return 0;
  // MADV_DONTNEED on a private read-only file mapping drops the pages; they are clean
  // copies of the file, refetched on a later read.
  if (::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return last - first;
}

size_t MappedFile::Prefault(const uint8_t* p, size_t n) const {
  if (!owned_ || p < data_ || n == 0 || p + n > data_ + size_) return 0;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t last = (reinterpret_cast<uintptr_t>(p) + n + page - 1) / page * page;
#ifndef MADV_POPULATE_READ
  constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14 (older headers lack the name)
#endif
  // The advice maps the whole range in one call; the read of one byte per page after it
  // then costs nothing, and faults the pages in where the advice is unknown (kernels
  // before 5.14, qemu-user).
  (void)::madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_READ);
  const auto* q = reinterpret_cast<const volatile uint8_t*>(first);
  uint8_t sink = 0;
  for (uintptr_t off = 0; off < last - first; off += page) sink ^= q[off];
  (void)sink;
  return last - first;
}

}  // namespace ember
