#include "loader/safetensors.h"

#include <algorithm>
#include <cstring>

#include "core/json.h"

namespace ember {

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Status SafetensorsFile::Open(const std::string& path, std::unique_ptr<SafetensorsFile>* out) {
  std::unique_ptr<MappedFile> f;
  EMBER_RETURN_IF_ERROR(MappedFile::Open(path, &f));
  auto s = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  s->file_ = std::move(f);
  EMBER_RETURN_IF_ERROR(s->Parse());
  *out = std::move(s);
  return Status::Ok();
}

Status SafetensorsFile::FromMemory(const void* data, size_t size, const std::string& name,
                                   std::unique_ptr<SafetensorsFile>* out) {
  auto s = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  s->file_ = MappedFile::FromMemory(data, size, name);
  EMBER_RETURN_IF_ERROR(s->Parse());
  *out = std::move(s);
  return Status::Ok();
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  for (const SafetensorsTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {

// Element size of a safetensors dtype; 0 when unknown.
size_t elem_size(const std::string& d) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1},
      {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (const auto& [n, s] : kSizes)
    if (d == n) return s;
  return 0;
}

// A non-negative integer that fits int64 (the dimensions and offsets are used as int64).
bool get_u64(const Json& v, uint64_t* out) {
  int64_t i = 0;
  if (!JsonInt64(v, &i) || i < 0) return false;
  *out = static_cast<uint64_t>(i);
  return true;
}

}  // namespace

Status SafetensorsFile::Parse() {
  const std::string& name = file_->path();
  const uint8_t* p = file_->data();
  const size_t size = file_->size();
  if (size < 8) return BadFormat(name + ": file of " + std::to_string(size) + " bytes has no header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
  if (n > size - 8)
    return BadFormat(name + ": header length " + std::to_string(n) + " exceeds the file size " +
                     std::to_string(size));
  Json root;
  // Writers pad with spaces; the JSON reader allows surrounding whitespace.
  EMBER_RETURN_IF_ERROR(ParseJson(std::string_view(reinterpret_cast<const char*>(p + 8), n), name, &root));
  if (!root.is_object()) return BadFormat(name + ": header is not a JSON object");
  const uint8_t* data = p + 8 + n;
  const uint64_t data_size = size - 8 - n;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [key, v] : root.items()) {
    if (key == "__metadata__") {
      if (!v.is_object()) return BadFormat(name + ": __metadata__ is not an object");
      for (const auto& [mk, mv] : v.items())
        if (mv.is_string()) meta_.emplace_back(mk, mv.get<std::string>());
      continue;
    }
    const std::string where = name + ": tensor '" + key + "'";
    if (!v.is_object()) return BadFormat(where + ": entry is not an object");
    const Json* dt = JsonFind(v, "dtype");
    const Json* sh = JsonFind(v, "shape");
    const Json* off = JsonFind(v, "data_offsets");
    if (!dt || !dt->is_string()) return BadFormat(where + ": missing or non-string dtype");
    if (!sh || !sh->is_array()) return BadFormat(where + ": missing or non-array shape");
    if (!off || !off->is_array() || off->size() != 2) return BadFormat(where + ": data_offsets is not [begin, end]");
    SafetensorsTensor t;
    t.name = key;
    t.dtype_name = dt->get<std::string>();
    const size_t es = elem_size(t.dtype_name);
    if (es == 0) return BadFormat(where + ": unknown dtype '" + t.dtype_name + "'");
    t.supported = t.dtype_name == "F32" || t.dtype_name == "F16" || t.dtype_name == "BF16";
    t.type = t.dtype_name == "F16" ? DType::F16 : t.dtype_name == "BF16" ? DType::BF16 : DType::F32;
    uint64_t count = 1;
    for (const Json& d : *sh) {
      uint64_t dim = 0;
      if (!get_u64(d, &dim)) return BadFormat(where + ": shape has a non-integer or negative dimension");
      if (dim != 0 && count > (uint64_t{1} << 62) / dim) return BadFormat(where + ": shape overflows");
      count *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t b = 0, e = 0;
    if (!get_u64((*off)[0], &b) || !get_u64((*off)[1], &e))
      return BadFormat(where + ": data_offsets are not non-negative integers");
    if (b > e || e > data_size)
      return BadFormat(where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                       "] outside the data section of " + std::to_string(data_size) + " bytes");
    if (e - b != count * es)
      return BadFormat(where + ": " + std::to_string(e - b) + " bytes of data for " + std::to_string(count) +
                       " elements of " + t.dtype_name);
    t.data = data + b;
    t.nbytes = static_cast<size_t>(e - b);
    if (e > b) ranges.emplace_back(b, e);
    tensors_.push_back(std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) return BadFormat(name + ": tensor data overlap");
  return Status::Ok();
}

}  // namespace ember
