// safetensors reader over mmap (Hugging Face weights and PEFT adapters).
//
// ---- The safetensors format (all integers little-endian) ---------------------
//   u64 N            length of the header in bytes
//   N bytes          UTF-8 JSON object: { "__metadata__": {str: str}  (optional),
//                      "<tensor name>": { "dtype": "F32"|"F16"|"BF16"|...,
//                                         "shape": [d0, d1, ...]  (row-major, d_last contiguous),
//                                         "data_offsets": [begin, end] }, ... }
//                    (writers pad it with spaces to a multiple of 8)
//   data             tensor bytes; offsets are relative to the end of the header.
// Checked before use: N fits the file, the JSON is valid, each entry has a known
// dtype, a shape of non-negative ints, end - begin == product(shape) * element size,
// begin <= end <= data size; overlapping tensors are rejected. Errors are BadFormat
// and name the file and the tensor. Types other than F32/F16/BF16 (I8, F64, ...) are
// listed but have dtype kUnsupportedType; the caller decides.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "quant/types.h"

namespace ember {

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;         // as in the file: "F32", "BF16", ...
  bool supported = false;         // dtype is F32, F16 or BF16
  DType type = DType::F32;        // valid when supported
  std::vector<int64_t> shape;     // row-major, last dimension contiguous
  const uint8_t* data = nullptr;  // into the mapping
  size_t nbytes = 0;
  int64_t n_elements() const;
};

class SafetensorsFile {
 public:
  static Status Open(const std::string& path, std::unique_ptr<SafetensorsFile>* out);
  // Parses a caller-owned buffer (must outlive the object); `name` is used in errors.
  static Status FromMemory(const void* data, size_t size, const std::string& name,
                           std::unique_ptr<SafetensorsFile>* out);
  const std::string& path() const { return file_->path(); }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  // "__metadata__" entries (string values only).
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return meta_; }

 private:
  Status Parse();
  std::unique_ptr<MappedFile> file_;
  std::vector<SafetensorsTensor> tensors_;
  std::vector<std::pair<std::string, std::string>> meta_;
};

}  // namespace ember
