// GGUF reader over mmap. The writer is loader/gguf_writer.h (offline library and tests only:
// the runtime library never writes GGUF).
//
// ---- The GGUF format (v2 and v3; all integers little-endian) -----------------
//   header:   u32 magic "GGUF" (0x46554747) | u32 version (2 or 3)
//             u64 n_tensors | u64 n_kv            (v1 used u32 here; unsupported)
//   metadata: n_kv x { string key | u32 value_type | value }
//             string  = u64 length | length bytes of UTF-8 (no terminator)
//             value   = scalar of value_type, or, for ARRAY (9):
//                       u32 element_type | u64 count | count elements
//             types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool (1 byte,
//                    0 or 1), 8 string, 9 array, 10 u64, 11 i64, 12 f64
//   tensors:  n_tensors x { string name | u32 n_dims (1..4) | n_dims x u64 ne
//                           | u32 ggml type | u64 offset }
//             ne[0] is the contiguous dimension (a row of a matrix); offset is
//             relative to the data section and a multiple of the alignment.
//   padding:  to `general.alignment` (u32 key, default 32, a power of two)
//   data:     tensor bytes; each tensor occupies row_bytes(type, ne0)*ne1*ne2*ne3.
// Every count, length, offset, dimension and type is checked against the file
// before use; errors name the file, the key or tensor, and what is wrong.
// Also rejected: duplicate keys or tensor names, overlapping tensor data, bools
// other than 0/1, empty keys/names. Codes: kBadFormat for malformed files;
// kUnsupported for version 1, other versions, big-endian files, nested arrays
// and unknown ggml tensor type ids. A file without tensors needs no data section.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "quant/types.h"

namespace ember {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Strings and array data are views into the mapped file and
// live as long as the GgufFile.
struct GgufValue {
  GgufType type = GgufType::kU8;
  // Scalars: integers in `i` (signed types) or `u` (unsigned, bool); floats in `f`.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0;
  std::string_view str;              // kString
  // kArray:
  GgufType elem_type = GgufType::kU8;
  uint64_t count = 0;
  const uint8_t* elems = nullptr;    // raw little-endian elements (non-string arrays)
  std::vector<std::string_view> strings;  // string arrays
};

struct GgufTensor {
  std::string name;
  DType type = DType::F32;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};   // ne[0] contiguous; unused dims are 1
  uint64_t n_elements = 0;
  uint64_t offset = 0;            // within the data section
  const uint8_t* data = nullptr;  // into the mapping
  size_t nbytes = 0;
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
};

class GgufFile {
 public:
  static Status Open(const std::string& path, std::unique_ptr<GgufFile>* out);
  // Parses a caller-owned buffer (must outlive the GgufFile); `name` is used in errors.
  static Status FromMemory(const void* data, size_t size, const std::string& name,
                           std::unique_ptr<GgufFile>* out);
  ~GgufFile();

  const std::string& path() const;
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t file_size() const;
  const uint8_t* file_data() const;
  // MappedFile::Release on the file's mapping (bytes released; 0 for in-memory files).
  size_t ReleasePages(const uint8_t* p, size_t n) const;
  // MappedFile::Prefault on the file's mapping (bytes made resident; 0 for in-memory files).
  size_t PrefaultPages(const uint8_t* p, size_t n) const;

  // Metadata, in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* Find(std::string_view key) const;  // nullptr when absent
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed getters. NotFound when absent; BadFormat naming the key when the type
  // does not fit (integers of any width are accepted when the value fits).
  Status GetString(std::string_view key, std::string* out) const;
  Status GetU32(std::string_view key, uint32_t* out) const;
  Status GetI32(std::string_view key, int32_t* out) const;
  Status GetU64(std::string_view key, uint64_t* out) const;
  Status GetF32(std::string_view key, float* out) const;  // f32, f64 or integer
  Status GetBool(std::string_view key, bool* out) const;
  Status GetStringArray(std::string_view key, std::vector<std::string_view>* out) const;
  Status GetF32Array(std::string_view key, std::vector<float>* out) const;
  Status GetI32Array(std::string_view key, std::vector<int32_t>* out) const;  // any int elem type that fits
  // Scalar-or-array integer key (e.g. per-layer head counts): returns n values,
  // broadcasting a scalar; BadFormat if an array has a length other than n.
  Status GetU32PerLayer(std::string_view key, size_t n, std::vector<uint32_t>* out) const;

  // Optional forms: `*out` keeps its value when the key is absent; wrong type is an error.
  Status GetStringOr(std::string_view key, std::string* out) const;
  Status GetU32Or(std::string_view key, uint32_t* out) const;
  Status GetF32Or(std::string_view key, float* out) const;
  Status GetBoolOr(std::string_view key, bool* out) const;

  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufTensor* FindTensor(std::string_view name) const;

 private:
  GgufFile() = default;
  Status Parse();
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensor> tensors_;
};

}  // namespace ember
