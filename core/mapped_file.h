// A read-only memory-mapped file (RAII). Model weights are used in place from it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace ember {

class MappedFile {
 public:
  // Maps `path` read-only. Errors name the path and the failing call.
  static Status Open(const std::string& path, std::unique_ptr<MappedFile>* out);
  // Wraps a caller-owned buffer (tests, in-memory models); not copied, not freed.
  static std::unique_ptr<MappedFile> FromMemory(const void* data, size_t size, std::string name);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Tells the kernel the pages wholly inside [p, p + n) will not be read again (they
  // were copied elsewhere, e.g. repacked weights): they leave the resident set. A later
  // read still works (the page is read from the file again). Returns the bytes released
  // (0 for memory wrapped by FromMemory, which is the caller's).
  size_t Release(const uint8_t* p, size_t n) const;
  // Maps in the pages that [p, p + n) touches now (MADV_POPULATE_READ, then a read of one
  // byte per page for systems without it), so later reads take no page faults. Returns
  // the bytes made resident (0 for memory wrapped by FromMemory, which is the caller's).
  size_t Prefault(const uint8_t* p, size_t n) const;

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool owned_ = false;  // true when mmapped by us
  std::string path_;
};

}  // namespace ember
