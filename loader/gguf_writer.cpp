// GGUF writer (loader/gguf_writer.h): GgufWriter lays a v3 file out (format in gguf.h),
// GgufStreamWriter writes it. Metadata is written in insertion order; tensor data
// follows the infos, each tensor at the next multiple of the alignment. Nothing is
// padded after the last tensor, so every strict prefix of a written file is a
// truncated (invalid) file.
#include "loader/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace ember {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr size_t kDefaultAlignment = 32;
constexpr size_t kWriteBuffer = 4u << 20;  // bytes gathered before a write(2)

// resize + memcpy rather than insert(): GCC 12 warns falsely (-Wstringop-overflow)
// on small range inserts into a vector.
void append_bytes(std::vector<uint8_t>* b, const void* p, size_t n) {
  if (n == 0) return;
  size_t at = b->size();
  b->resize(at + n);
  std::memcpy(b->data() + at, p, n);
}

template <class T>
void append(std::vector<uint8_t>* b, T v) {
  append_bytes(b, &v, sizeof v);
}

void append_string(std::vector<uint8_t>* b, std::string_view s) {
  append<uint64_t>(b, s.size());
  append_bytes(b, s.data(), s.size());
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

size_t elem_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    default: return 0;
  }
}

}  // namespace

// ---- metadata --------------------------------------------------------------------

void GgufWriter::Upsert(Kv kv) {
  for (Kv& old : kv_) {
    if (old.key == kv.key) {
      old = std::move(kv);
      return;
    }
  }
  kv_.push_back(std::move(kv));
}

// `v` is the value's encoding (a scalar's bytes, or a string with its length).
void GgufWriter::Put(std::string key, GgufType type, const void* v, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(v);
  Upsert(Kv{std::move(key), type, GgufType::kU8, std::vector<uint8_t>(p, p + n), 1});
}

void GgufWriter::PutArray(std::string key, GgufType elem, std::vector<uint8_t> payload, uint64_t count) {
  Upsert(Kv{std::move(key), GgufType::kArray, elem, std::move(payload), count});
}

void GgufWriter::SetU8(std::string key, uint8_t v) { Put(std::move(key), GgufType::kU8, &v, sizeof v); }
void GgufWriter::SetI8(std::string key, int8_t v) { Put(std::move(key), GgufType::kI8, &v, sizeof v); }
void GgufWriter::SetU16(std::string key, uint16_t v) { Put(std::move(key), GgufType::kU16, &v, sizeof v); }
void GgufWriter::SetI16(std::string key, int16_t v) { Put(std::move(key), GgufType::kI16, &v, sizeof v); }
void GgufWriter::SetU32(std::string key, uint32_t v) { Put(std::move(key), GgufType::kU32, &v, sizeof v); }
void GgufWriter::SetI32(std::string key, int32_t v) { Put(std::move(key), GgufType::kI32, &v, sizeof v); }
void GgufWriter::SetU64(std::string key, uint64_t v) { Put(std::move(key), GgufType::kU64, &v, sizeof v); }
void GgufWriter::SetI64(std::string key, int64_t v) { Put(std::move(key), GgufType::kI64, &v, sizeof v); }
void GgufWriter::SetF32(std::string key, float v) { Put(std::move(key), GgufType::kF32, &v, sizeof v); }
void GgufWriter::SetF64(std::string key, double v) { Put(std::move(key), GgufType::kF64, &v, sizeof v); }
void GgufWriter::SetBool(std::string key, bool v) {
  uint8_t b = v ? 1 : 0;
  Put(std::move(key), GgufType::kBool, &b, 1);
}

void GgufWriter::SetString(std::string key, std::string v) {
  std::vector<uint8_t> enc;
  append_string(&enc, v);
  Put(std::move(key), GgufType::kString, enc.data(), enc.size());
}

void GgufWriter::SetStringArray(std::string key, std::vector<std::string> v) {
  std::vector<uint8_t> enc;
  for (const std::string& s : v) append_string(&enc, s);
  PutArray(std::move(key), GgufType::kString, std::move(enc), v.size());
}

void GgufWriter::SetF32Array(std::string key, std::vector<float> v) {
  std::vector<uint8_t> enc(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(enc.data(), v.data(), enc.size());
  PutArray(std::move(key), GgufType::kF32, std::move(enc), v.size());
}

void GgufWriter::SetI32Array(std::string key, std::vector<int32_t> v) {
  std::vector<uint8_t> enc(v.size() * sizeof(int32_t));
  if (!v.empty()) std::memcpy(enc.data(), v.data(), enc.size());
  PutArray(std::move(key), GgufType::kI32, std::move(enc), v.size());
}

void GgufWriter::SetU32Array(std::string key, std::vector<uint32_t> v) {
  std::vector<uint8_t> enc(v.size() * sizeof(uint32_t));
  if (!v.empty()) std::memcpy(enc.data(), v.data(), enc.size());
  PutArray(std::move(key), GgufType::kU32, std::move(enc), v.size());
}

void GgufWriter::CopyMetadata(const GgufFile& src) {
  for (const auto& [key, v] : src.metadata()) {
    std::vector<uint8_t> enc;
    switch (v.type) {
      case GgufType::kString:
        append_string(&enc, v.str);
        Put(key, v.type, enc.data(), enc.size());
        break;
      case GgufType::kArray:
        if (v.elem_type == GgufType::kString) {
          for (std::string_view s : v.strings) append_string(&enc, s);
        } else {
          // The reader checked count * element size against the file.
          enc.assign(v.elems, v.elems + v.count * elem_size(v.elem_type));
        }
        PutArray(key, v.elem_type, std::move(enc), v.count);
        break;
      case GgufType::kU8: case GgufType::kBool: append<uint8_t>(&enc, static_cast<uint8_t>(v.u)); break;
      case GgufType::kI8: append<int8_t>(&enc, static_cast<int8_t>(v.i)); break;
      case GgufType::kU16: append<uint16_t>(&enc, static_cast<uint16_t>(v.u)); break;
      case GgufType::kI16: append<int16_t>(&enc, static_cast<int16_t>(v.i)); break;
      case GgufType::kU32: append<uint32_t>(&enc, static_cast<uint32_t>(v.u)); break;
      case GgufType::kI32: append<int32_t>(&enc, static_cast<int32_t>(v.i)); break;
      case GgufType::kU64: append<uint64_t>(&enc, v.u); break;
      case GgufType::kI64: append<int64_t>(&enc, v.i); break;
      case GgufType::kF32: append<float>(&enc, static_cast<float>(v.f)); break;
      case GgufType::kF64: append<double>(&enc, v.f); break;
    }
    if (v.type != GgufType::kString && v.type != GgufType::kArray) Put(key, v.type, enc.data(), enc.size());
  }
}

// ---- tensors ---------------------------------------------------------------------

Status GgufWriter::CheckTensor(const std::string& name, DType type, const std::vector<int64_t>& ne,
                               uint64_t* nbytes) const {
  const std::string what = "GgufWriter: tensor '" + name + "'";
  if (name.empty()) return InvalidArgument("GgufWriter: empty tensor name");
  for (const Tensor& t : tensors_) {
    if (t.name == name) return InvalidArgument(what + ": added twice");
  }
  const TypeTraits& info = dtype_info(type);
  if (!info.name) return InvalidArgument(what + ": unknown type id " + std::to_string(static_cast<uint32_t>(type)));
  if (ne.empty() || ne.size() > 4) {
    return InvalidArgument(what + ": " + std::to_string(ne.size()) + " dimensions (1..4 allowed)");
  }
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 0) return InvalidArgument(what + ": ne[" + std::to_string(d) + "] is negative");
  }
  if (ne[0] % info.block_size != 0) {
    return InvalidArgument(what + ": ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                           info.name + " block size " + std::to_string(info.block_size));
  }
  uint64_t expect = static_cast<uint64_t>(ne[0]) / info.block_size * info.type_size;
  for (size_t d = 1; d < ne.size(); ++d) {
    if (__builtin_mul_overflow(expect, static_cast<uint64_t>(ne[d]), &expect)) {
      return InvalidArgument(what + ": size overflows");
    }
  }
  *nbytes = expect;
  return Status::Ok();
}

Status GgufWriter::AddTensor(std::string name, DType type, std::vector<int64_t> ne, const void* data,
                             size_t nbytes) {
  uint64_t expect = 0;
  EMBER_RETURN_IF_ERROR(CheckTensor(name, type, ne, &expect));
  const std::string what = "GgufWriter: tensor '" + name + "'";
  if (expect != nbytes) {
    return InvalidArgument(what + ": " + std::to_string(nbytes) + " bytes given, the shape needs " +
                           std::to_string(expect));
  }
  if (nbytes > 0 && data == nullptr) return InvalidArgument(what + ": no data");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  tensors_.push_back(Tensor{std::move(name), type, std::move(ne), expect, true,
                            nbytes ? std::vector<uint8_t>(p, p + nbytes) : std::vector<uint8_t>()});
  return Status::Ok();
}

Status GgufWriter::AddTensorInfo(std::string name, DType type, std::vector<int64_t> ne) {
  uint64_t nbytes = 0;
  EMBER_RETURN_IF_ERROR(CheckTensor(name, type, ne, &nbytes));
  tensors_.push_back(Tensor{std::move(name), type, std::move(ne), nbytes, false, {}});
  return Status::Ok();
}

bool GgufWriter::AllTensorsHaveData() const {
  for (const Tensor& t : tensors_)
    if (!t.has_data) return false;
  return true;
}

// ---- output ----------------------------------------------------------------------

size_t GgufWriter::Alignment(bool* valid) const {
  *valid = true;
  for (const Kv& kv : kv_) {
    if (kv.key != "general.alignment") continue;
    uint32_t a = 0;
    if (kv.type == GgufType::kU32 && kv.payload.size() == 4) std::memcpy(&a, kv.payload.data(), 4);
    if (a != 0 && std::has_single_bit(a)) return a;
    // Serialize() still lays the data out (at 32) so tests can craft such files.
    *valid = false;
  }
  return kDefaultAlignment;
}

std::vector<uint8_t> GgufWriter::HeaderBytes(size_t alignment, std::vector<uint64_t>* offsets) const {
  std::vector<uint8_t> b;
  append<uint32_t>(&b, kMagic);
  append<uint32_t>(&b, kVersion);
  append<uint64_t>(&b, tensors_.size());
  append<uint64_t>(&b, kv_.size());
  for (const Kv& kv : kv_) {
    append_string(&b, kv.key);
    append<uint32_t>(&b, static_cast<uint32_t>(kv.type));
    if (kv.type == GgufType::kArray) {
      append<uint32_t>(&b, static_cast<uint32_t>(kv.elem));
      append<uint64_t>(&b, kv.count);
    }
    append_bytes(&b, kv.payload.data(), kv.payload.size());
  }
  offsets->clear();
  uint64_t cursor = 0;
  for (const Tensor& t : tensors_) {
    append_string(&b, t.name);
    append<uint32_t>(&b, static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) append<uint64_t>(&b, static_cast<uint64_t>(n));
    append<uint32_t>(&b, static_cast<uint32_t>(t.type));
    uint64_t off = align_up(cursor, alignment);
    append<uint64_t>(&b, off);
    offsets->push_back(off);
    cursor = off + t.nbytes;
  }
  if (!tensors_.empty()) b.resize(align_up(b.size(), alignment), 0);
  return b;
}

std::vector<uint8_t> GgufWriter::Serialize() const {
  bool valid = true;
  std::vector<uint64_t> offsets;
  std::vector<uint8_t> b = HeaderBytes(Alignment(&valid), &offsets);
  const size_t data_start = b.size();
  for (size_t k = 0; k < tensors_.size(); ++k) {
    b.resize(data_start + offsets[k], 0);
    if (tensors_[k].has_data) append_bytes(&b, tensors_[k].data.data(), tensors_[k].data.size());
    else b.resize(b.size() + tensors_[k].nbytes, 0);  // AddTensorInfo: zeros
  }
  return b;
}

Status GgufWriter::Write(const std::string& path) const {
  bool valid = true;
  const size_t alignment = Alignment(&valid);
  if (!valid) return InvalidArgument(path + ": key 'general.alignment' must be a u32 power of two");
  if (!AllTensorsHaveData()) return InvalidArgument(path + ": a tensor without data (AddTensorInfo): stream it");
  GgufStreamWriter w;
  EMBER_RETURN_IF_ERROR(w.Open(path, *this, alignment));
  for (const Tensor& t : tensors_) EMBER_RETURN_IF_ERROR(w.Append(t.data.data(), t.data.size()));
  return w.Finish();
}

// ---- streaming -------------------------------------------------------------------

GgufStreamWriter::~GgufStreamWriter() { Abort(); }

void GgufStreamWriter::Abort() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
    fd_ = -1;
  }
}

Status GgufStreamWriter::Fail(const std::string& what) {
  Status s = IoError(tmp_ + ": " + what + ": " + std::strerror(errno));
  Abort();
  return s;
}

Status GgufStreamWriter::Open(const std::string& path, const GgufWriter& meta, std::vector<Tensor> tensors,
                              size_t alignment) {
  if (!meta.tensors_.empty()) return Internal("GgufStreamWriter: the metadata writer holds tensors");
  GgufWriter layout = meta;
  for (Tensor& t : tensors) {
    Status s = layout.AddTensorInfo(std::move(t.name), t.type, std::move(t.ne));
    if (!s.ok()) return Status(s.code(), path + ": " + s.message());
  }
  return Open(path, layout, alignment);
}

Status GgufStreamWriter::Open(const std::string& path, const GgufWriter& layout, size_t alignment) {
  if (fd_ >= 0) return Internal("GgufStreamWriter::Open called twice");
  if (alignment == 0 || !std::has_single_bit(alignment)) {
    return InvalidArgument(path + ": alignment " + std::to_string(alignment) + " is not a power of two");
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return InvalidArgument("'" + path + "' is a directory");

  std::vector<uint8_t> head = layout.HeaderBytes(alignment, &offsets_);
  sizes_.clear();
  for (const GgufWriter::Tensor& t : layout.tensors_) sizes_.push_back(t.nbytes);

  // A unique sibling name, so the rename is atomic (same file system) and a reader
  // never sees a half-written model; O_EXCL never clobbers someone else's file.
  static std::atomic<unsigned> counter{0};
  path_ = path;
  tmp_ = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError(tmp_ + ": cannot create: " + std::strerror(errno));
  cur_ = 0;
  cur_done_ = 0;
  pos_ = 0;
  buf_ = std::move(head);
  buf_.reserve(kWriteBuffer);
  // Skip leading empty tensors so Append() always targets one with bytes left.
  while (cur_ < sizes_.size() && sizes_[cur_] == 0) ++cur_;
  return Flush();
}

// Writes the buffer out, retrying short writes and EINTR.
Status GgufStreamWriter::Flush() {
  const uint8_t* p = buf_.data();
  size_t n = buf_.size();
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Fail("write failed");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  buf_.clear();
  return Status::Ok();
}

Status GgufStreamWriter::Append(const void* data, size_t n) {
  if (fd_ < 0) return Internal("GgufStreamWriter: not open");
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (cur_ >= sizes_.size()) return Internal(path_ + ": more tensor data than the tensors hold");
    if (cur_done_ == 0) {  // start of a tensor: padding up to its offset
      if (offsets_[cur_] < pos_) return Internal("GgufStreamWriter: offsets out of order");
      buf_.resize(buf_.size() + (offsets_[cur_] - pos_), 0);
      pos_ = offsets_[cur_];
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, sizes_[cur_] - cur_done_));
    append_bytes(&buf_, p, take);
    p += take;
    n -= take;
    cur_done_ += take;
    pos_ += take;
    if (cur_done_ == sizes_[cur_]) {
      cur_done_ = 0;
      ++cur_;
      while (cur_ < sizes_.size() && sizes_[cur_] == 0) ++cur_;
    }
    if (buf_.size() >= kWriteBuffer) EMBER_RETURN_IF_ERROR(Flush());
  }
  return Status::Ok();
}

Status GgufStreamWriter::Finish() {
  if (fd_ < 0) return Internal("GgufStreamWriter: not open");
  if (cur_ < sizes_.size()) {
    Status s = Internal(path_ + ": tensor data incomplete (" + std::to_string(cur_) + " of " +
                        std::to_string(sizes_.size()) + " tensors written)");
    Abort();
    return s;
  }
  EMBER_RETURN_IF_ERROR(Flush());
  if (::fsync(fd_) != 0) return Fail("fsync failed");
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    Status s = IoError(tmp_ + ": close failed: " + std::strerror(errno));
    ::unlink(tmp_.c_str());
    return s;
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    Status s = IoError(path_ + ": cannot rename " + tmp_ + " into place: " + std::strerror(errno));
    ::unlink(tmp_.c_str());
    return s;
  }
  return Status::Ok();
}

}  // namespace ember
