// GGUF reader: parses the header, metadata and tensor infos of a mapped file and
// validates every count, length, offset and size before it is used (see gguf.h for
// the format). Nothing is copied except keys and tensor names; values and tensor
// data are views into the mapping.
#include "loader/gguf.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>

namespace ember {

// Values are read with memcpy in host order: Ember targets little-endian CPUs
// (x86-64, AArch64), like the format itself.
static_assert(std::endian::native == std::endian::little, "GGUF reader assumes a little-endian host");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr size_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;
// The smallest possible encodings, used to bound counts by the bytes left so that
// an absurd n_kv / n_tensors / array count fails before anything is allocated.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;               // empty key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim
constexpr uint64_t kMinStringBytes = 8;                    // length only

// Bytes of one scalar of `t`; 0 for strings and arrays (variable length) and for
// ids outside the format.
size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

bool known_type(uint32_t id) { return id <= static_cast<uint32_t>(GgufType::kF64); }

bool is_integer(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

bool is_signed(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 || t == GgufType::kI64;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Decodes one fixed-size scalar at `p` (caller checked the size) into `v`.
void decode_scalar(GgufType t, const uint8_t* p, GgufValue* v) {
  v->type = t;
  switch (t) {
    case GgufType::kU8: v->u = p[0]; break;
    case GgufType::kBool: v->u = p[0]; break;
    case GgufType::kI8: v->i = static_cast<int8_t>(p[0]); break;
    case GgufType::kU16: v->u = load<uint16_t>(p); break;
    case GgufType::kI16: v->i = load<int16_t>(p); break;
    case GgufType::kU32: v->u = load<uint32_t>(p); break;
    case GgufType::kI32: v->i = load<int32_t>(p); break;
    case GgufType::kU64: v->u = load<uint64_t>(p); break;
    case GgufType::kI64: v->i = load<int64_t>(p); break;
    case GgufType::kF32: v->f = load<float>(p); break;
    case GgufType::kF64: v->f = load<double>(p); break;
    case GgufType::kString: case GgufType::kArray: break;
  }
}

// A name from the file, quoted for an error message; control bytes escaped and
// long names cut so a hostile file cannot flood the log.
std::string quoted(std::string_view s) {
  constexpr size_t kMax = 96;
  std::string out = "'";
  for (size_t k = 0; k < s.size() && k < kMax; ++k) {
    unsigned char c = static_cast<unsigned char>(s[k]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  out += "'";
  return out;
}

// Bounds-checked forward reader over the mapped bytes. Every read names what it
// was reading (`what`), so a truncated file says where it ends.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return data_ + pos_; }

  Status Error(const std::string& what, const std::string& problem, Code code = Code::kBadFormat) const {
    return Status(code, file_ + ": " + what + ": " + problem);
  }

  // Takes `n` bytes, or fails naming what did not fit.
  Status Take(uint64_t n, const std::string& what, const uint8_t** out) {
    if (n > remaining()) {
      return Error(what, "truncated at byte " + std::to_string(pos_) + " (needs " +
                             std::to_string(n) + " bytes, " + std::to_string(remaining()) +
                             " left in a " + std::to_string(size_) + "-byte file)");
    }
    *out = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return Status::Ok();
  }

  template <class T>
  Status Read(const std::string& what, T* v) {
    const uint8_t* p = nullptr;
    EMBER_RETURN_IF_ERROR(Take(sizeof(T), what, &p));
    *v = load<T>(p);
    return Status::Ok();
  }

  // The fast path for the many strings of a vocabulary: no label is built unless
  // the read fails. Leaves the position unchanged on failure.
  bool TryReadString(std::string_view* s) {
    if (remaining() < 8) return false;
    uint64_t len = load<uint64_t>(here());
    if (len > remaining() - 8) return false;
    *s = std::string_view(reinterpret_cast<const char*>(here() + 8), static_cast<size_t>(len));
    pos_ += 8 + static_cast<size_t>(len);
    return true;
  }

  Status ReadString(const std::string& what, std::string_view* s) {
    uint64_t len = 0;
    EMBER_RETURN_IF_ERROR(Read(what + " length", &len));
    if (len > remaining()) {
      return Error(what, "string length " + std::to_string(len) + " at byte " +
                             std::to_string(pos_ - 8) + " exceeds the " +
                             std::to_string(remaining()) + " bytes left in the file");
    }
    const uint8_t* p = nullptr;
    EMBER_RETURN_IF_ERROR(Take(len, what, &p));
    *s = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& file_;
};

// Reads a value of type `type` (already read) for the key named in `what`.
Status read_value(Cursor& c, GgufType type, const std::string& what, GgufValue* v) {
  v->type = type;
  if (type == GgufType::kString) return c.ReadString(what, &v->str);
  if (type != GgufType::kArray) {
    const uint8_t* p = nullptr;
    EMBER_RETURN_IF_ERROR(c.Take(scalar_size(type), what, &p));
    decode_scalar(type, p, v);
    if (type == GgufType::kBool && v->u > 1) {
      return c.Error(what, "bool value " + std::to_string(v->u) + " is not 0 or 1");
    }
    return Status::Ok();
  }

  uint32_t elem_id = 0;
  uint64_t count = 0;
  EMBER_RETURN_IF_ERROR(c.Read(what + " array element type", &elem_id));
  if (!known_type(elem_id)) {
    return c.Error(what, "unknown array element type id " + std::to_string(elem_id));
  }
  GgufType elem = static_cast<GgufType>(elem_id);
  if (elem == GgufType::kArray) {
    // GgufValue has no place for nested arrays and no known model uses them.
    return c.Error(what, "nested arrays are not supported", Code::kUnsupported);
  }
  EMBER_RETURN_IF_ERROR(c.Read(what + " array count", &count));
  v->elem_type = elem;
  v->count = count;
  if (elem == GgufType::kString) {
    if (count > c.remaining() / kMinStringBytes) {
      return c.Error(what, "array count " + std::to_string(count) + " of strings cannot fit in the " +
                               std::to_string(c.remaining()) + " bytes left in the file");
    }
    v->strings.reserve(static_cast<size_t>(count));
    for (uint64_t k = 0; k < count; ++k) {
      std::string_view s;
      if (!c.TryReadString(&s)) return c.ReadString(what + "[" + std::to_string(k) + "]", &s);
      v->strings.push_back(s);
    }
    return Status::Ok();
  }
  size_t esize = scalar_size(elem);
  if (count > c.remaining() / esize) {
    return c.Error(what, "array of " + std::to_string(count) + " " + gguf_type_name(elem) +
                             " exceeds the " + std::to_string(c.remaining()) +
                             " bytes left in the file");
  }
  const uint8_t* p = nullptr;
  EMBER_RETURN_IF_ERROR(c.Take(count * esize, what, &p));
  v->elems = p;
  if (elem == GgufType::kBool) {
    for (uint64_t k = 0; k < count; ++k) {
      if (p[k] > 1) {
        return c.Error(what, "bool element [" + std::to_string(k) + "] is " + std::to_string(p[k]) +
                                 ", not 0 or 1");
      }
    }
  }
  return Status::Ok();
}

// Checked arithmetic: false on overflow.
bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
bool add_ok(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Integer value of a scalar GgufValue as T, when the value fits.
template <class T>
bool int_fits(const GgufValue& v, T* out) {
  if (!is_integer(v.type)) return false;
  if (is_signed(v.type)) {
    if (!std::in_range<T>(v.i)) return false;
    *out = static_cast<T>(v.i);
  } else {
    if (!std::in_range<T>(v.u)) return false;
    *out = static_cast<T>(v.u);
  }
  return true;
}

std::string value_text(const GgufValue& v) {
  if (is_signed(v.type)) return std::to_string(v.i);
  return std::to_string(v.u);
}

// Element k of a non-string array, decoded as a scalar.
GgufValue array_elem(const GgufValue& a, uint64_t k) {
  GgufValue e;
  size_t esize = scalar_size(a.elem_type);
  decode_scalar(a.elem_type, a.elems + k * esize, &e);
  return e;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

// ---- opening ---------------------------------------------------------------------

GgufFile::~GgufFile() = default;

Status GgufFile::Open(const std::string& path, std::unique_ptr<GgufFile>* out) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  EMBER_RETURN_IF_ERROR(MappedFile::Open(path, &g->file_));
  EMBER_RETURN_IF_ERROR(g->Parse());
  *out = std::move(g);
  return Status::Ok();
}

Status GgufFile::FromMemory(const void* data, size_t size, const std::string& name,
                            std::unique_ptr<GgufFile>* out) {
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->file_ = MappedFile::FromMemory(data, size, name);
  EMBER_RETURN_IF_ERROR(g->Parse());
  *out = std::move(g);
  return Status::Ok();
}

const std::string& GgufFile::path() const { return file_->path(); }
size_t GgufFile::file_size() const { return file_->size(); }
const uint8_t* GgufFile::file_data() const { return file_->data(); }
size_t GgufFile::ReleasePages(const uint8_t* p, size_t n) const { return file_->Release(p, n); }
size_t GgufFile::PrefaultPages(const uint8_t* p, size_t n) const { return file_->Prefault(p, n); }

// ---- parsing ---------------------------------------------------------------------

namespace {

// Reserve only a modest amount up front: the counts are bounded by the file size,
// but a GgufValue is much larger than its smallest encoding, so growth is left to
// entries that actually parse.
constexpr uint64_t kMaxReserve = 1 << 12;

// Magic, version and the two counts, each count bounded by the bytes left so that a
// hostile count cannot allocate.
Status read_header(Cursor& c, const std::string& name, const uint8_t* data, size_t size, uint32_t* version,
                   uint64_t* n_tensors_out, uint64_t* n_kv_out) {
  if (size < 4) {
    return BadFormat(name + ": not a GGUF file: only " + std::to_string(size) +
                     " bytes (the magic alone needs 4)");
  }
  uint32_t magic = 0;
  EMBER_RETURN_IF_ERROR(c.Read("magic", &magic));
  if (magic != kMagic) {
    std::string shown;
    for (int k = 0; k < 4; ++k) {
      unsigned char ch = data[k];
      shown += (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '.';
    }
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    return BadFormat(name + ": bad magic " + hex + " ('" + shown + "'), expected 'GGUF'");
  }
  EMBER_RETURN_IF_ERROR(c.Read("header version", version));
  if (*version == 1) {
    return Unsupported(name + ": GGUF version 1 is not supported (32-bit counts; only versions 2 and 3 are read)");
  }
  if (*version == 0x02000000u || *version == 0x03000000u) {
    return Unsupported(name + ": big-endian GGUF (version field " + std::to_string(*version) +
                       ") is not supported");
  }
  if (*version != 2 && *version != 3) {
    return Unsupported(name + ": unsupported GGUF version " + std::to_string(*version) +
                       " (only versions 2 and 3 are read)");
  }
  uint64_t n_tensors = 0, n_kv = 0;
  EMBER_RETURN_IF_ERROR(c.Read("header tensor count", &n_tensors));
  EMBER_RETURN_IF_ERROR(c.Read("header metadata count", &n_kv));
  const uint64_t left = c.remaining();
  if (n_kv > left / kMinKvBytes) {
    return BadFormat(name + ": header: metadata count n_kv = " + std::to_string(n_kv) +
                     " cannot fit in the " + std::to_string(left) + " bytes after the header");
  }
  if (n_tensors > left / kMinTensorInfoBytes ||
      n_tensors * kMinTensorInfoBytes + n_kv * kMinKvBytes > left) {
    return BadFormat(name + ": header: tensor count n_tensors = " + std::to_string(n_tensors) +
                     " (with " + std::to_string(n_kv) + " metadata keys) cannot fit in the " +
                     std::to_string(left) + " bytes after the header");
  }
  *n_tensors_out = n_tensors;
  *n_kv_out = n_kv;
  return Status::Ok();
}

// The n_kv key/value pairs, keys unique and non-empty.
Status read_metadata(Cursor& c, uint64_t n_kv, std::vector<std::pair<std::string, GgufValue>>* kv) {
  kv->reserve(static_cast<size_t>(std::min(n_kv, kMaxReserve)));
  std::unordered_set<std::string_view> keys;  // views into the mapping
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string what = "metadata key #" + std::to_string(k);
    std::string_view key;
    EMBER_RETURN_IF_ERROR(c.ReadString(what, &key));
    if (key.empty()) return c.Error(what, "empty key");
    what = "key " + quoted(key);
    uint32_t type_id = 0;
    EMBER_RETURN_IF_ERROR(c.Read(what + " value type", &type_id));
    if (!known_type(type_id)) {
      return c.Error(what, "unknown value type id " + std::to_string(type_id));
    }
    GgufValue v;
    Status st = read_value(c, static_cast<GgufType>(type_id), what, &v);
    if (!st.ok()) return st;
    if (!keys.insert(key).second) return c.Error(what, "duplicate key");
    kv->emplace_back(std::string(key), std::move(v));
  }
  return Status::Ok();
}

// The dimensions of a tensor info (after its name): n_dims, ne[], the element count.
Status read_tensor_shape(Cursor& c, const std::string& what, GgufTensor* t) {
  EMBER_RETURN_IF_ERROR(c.Read(what + " n_dims", &t->n_dims));
  if (t->n_dims < 1 || t->n_dims > kMaxDims) {
    return c.Error(what, "n_dims " + std::to_string(t->n_dims) + " is outside 1..4");
  }
  uint64_t n_elements = 1;
  for (uint32_t d = 0; d < t->n_dims; ++d) {
    std::string dim = "ne[" + std::to_string(d) + "]";
    uint64_t ne = 0;
    EMBER_RETURN_IF_ERROR(c.Read(what + " " + dim, &ne));
    if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return c.Error(what, dim + " = " + std::to_string(static_cast<int64_t>(ne)) + " is negative");
    }
    t->ne[d] = static_cast<int64_t>(ne);
    if (!mul_ok(n_elements, ne, &n_elements) ||
        n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return c.Error(what, "element count overflows at " + dim + " = " + std::to_string(ne));
    }
  }
  t->n_elements = n_elements;
  return Status::Ok();
}

// The type of a tensor info (after its shape) and the byte size it implies.
Status read_tensor_type(Cursor& c, const std::string& what, GgufTensor* t) {
  uint32_t type_id = 0;
  EMBER_RETURN_IF_ERROR(c.Read(what + " type", &type_id));
  const TypeTraits& info = dtype_info(type_id);
  if (info.name == nullptr) {
    return c.Error(what, "unknown ggml tensor type id " + std::to_string(type_id), Code::kUnsupported);
  }
  t->type = static_cast<DType>(type_id);
  if (static_cast<uint64_t>(t->ne[0]) % info.block_size != 0) {
    return c.Error(what, "ne[0] = " + std::to_string(t->ne[0]) + " is not a multiple of the " +
                             info.name + " block size " + std::to_string(info.block_size));
  }
  // Bytes: blocks per row x bytes per block x rows, each step checked.
  uint64_t nbytes = static_cast<uint64_t>(t->ne[0]) / info.block_size;
  bool ok = mul_ok(nbytes, info.type_size, &nbytes);
  for (uint32_t d = 1; d < kMaxDims && ok; ++d) ok = mul_ok(nbytes, static_cast<uint64_t>(t->ne[d]), &nbytes);
  if (!ok || nbytes > std::numeric_limits<size_t>::max()) {
    return c.Error(what, "byte size overflows");
  }
  t->nbytes = static_cast<size_t>(nbytes);
  return Status::Ok();
}

// Tensor info #k: name (unique, non-empty), shape, type, aligned offset.
Status read_tensor_info(Cursor& c, uint64_t k, size_t alignment, std::unordered_set<std::string_view>* names,
                        GgufTensor* t) {
  std::string what = "tensor #" + std::to_string(k);
  std::string_view tname;
  EMBER_RETURN_IF_ERROR(c.ReadString(what + " name", &tname));
  if (tname.empty()) return c.Error(what, "empty tensor name");
  what = "tensor " + quoted(tname);
  if (!names->insert(tname).second) return c.Error(what, "duplicate tensor name");
  t->name = std::string(tname);
  EMBER_RETURN_IF_ERROR(read_tensor_shape(c, what, t));
  EMBER_RETURN_IF_ERROR(read_tensor_type(c, what, t));
  EMBER_RETURN_IF_ERROR(c.Read(what + " offset", &t->offset));
  if (t->offset % alignment != 0) {
    return c.Error(what, "offset " + std::to_string(t->offset) + " is not a multiple of the alignment " +
                             std::to_string(alignment));
  }
  return Status::Ok();
}

// Points every tensor at its bytes in the data section, which starts at the first
// multiple of the alignment at or after `end_of_infos`; each must lie inside the file.
Status place_tensor_data(const std::string& name, const uint8_t* data, size_t size, size_t end_of_infos,
                         size_t alignment, std::vector<GgufTensor>* tensors) {
  uint64_t data_start = 0;
  if (!add_ok(end_of_infos, alignment - 1, &data_start)) {
    return BadFormat(name + ": data section offset overflows");
  }
  data_start &= ~static_cast<uint64_t>(alignment - 1);
  if (data_start > size) {
    return BadFormat(name + ": data section would start at byte " + std::to_string(data_start) +
                     ", past end of file (" + std::to_string(size) + " bytes)");
  }
  const uint64_t data_size = size - data_start;
  for (GgufTensor& t : *tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      uint64_t begin = 0, end = 0;
      std::string range;
      if (add_ok(data_start, t.offset, &begin) && add_ok(begin, t.nbytes, &end)) {
        range = "data [" + std::to_string(begin) + ", " + std::to_string(end) + ")";
      } else {
        range = "data offset " + std::to_string(t.offset) + " + " + std::to_string(t.nbytes) + " bytes";
      }
      return BadFormat(name + ": tensor " + quoted(t.name) + ": " + range + " past end of file (" +
                       std::to_string(size) + " bytes)");
    }
    t.data = data + data_start + t.offset;
  }
  return Status::Ok();
}

// No two tensors may share bytes (a writer bug or a crafted file aliasing weights).
Status check_no_overlap(const std::string& name, const std::vector<GgufTensor>& tensors) {
  std::vector<const GgufTensor*> by_offset;
  by_offset.reserve(tensors.size());
  for (const GgufTensor& t : tensors) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensor& a = *by_offset[k - 1];
    const GgufTensor& b = *by_offset[k];
    if (a.offset + a.nbytes > b.offset) {
      return BadFormat(name + ": tensors " + quoted(a.name) + " [" + std::to_string(a.offset) + ", " +
                       std::to_string(a.offset + a.nbytes) + ") and " + quoted(b.name) + " [" +
                       std::to_string(b.offset) + ", " + std::to_string(b.offset + b.nbytes) +
                       ") overlap in the data section");
    }
  }
  return Status::Ok();
}

}  // namespace

Status GgufFile::Parse() {
  const std::string& name = file_->path();
  const size_t size = file_->size();
  Cursor c(file_->data(), size, name);
  uint64_t n_tensors = 0, n_kv = 0;
  EMBER_RETURN_IF_ERROR(read_header(c, name, file_->data(), size, &version_, &n_tensors, &n_kv));
  EMBER_RETURN_IF_ERROR(read_metadata(c, n_kv, &kv_));

  // Alignment of the data section and of every tensor offset.
  alignment_ = kDefaultAlignment;
  if (const GgufValue* a = Find("general.alignment")) {
    if (a->type != GgufType::kU32) {
      return BadFormat(name + ": key 'general.alignment': expected u32, found " +
                       gguf_type_name(a->type));
    }
    if (a->u == 0 || !std::has_single_bit(a->u)) {
      return BadFormat(name + ": key 'general.alignment': " + std::to_string(a->u) +
                       " is not a power of two");
    }
    alignment_ = static_cast<size_t>(a->u);
  }

  tensors_.reserve(static_cast<size_t>(std::min(n_tensors, kMaxReserve)));
  std::unordered_set<std::string_view> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    EMBER_RETURN_IF_ERROR(read_tensor_info(c, k, alignment_, &names, &t));
    tensors_.push_back(std::move(t));
  }

  // A file without tensors needs no data section (and writers may end it right
  // after the metadata).
  if (tensors_.empty()) return Status::Ok();
  EMBER_RETURN_IF_ERROR(place_tensor_data(name, file_->data(), size, c.pos(), alignment_, &tensors_));
  return check_no_overlap(name, tensors_);
}

// ---- lookup ----------------------------------------------------------------------

// Linear scans: files hold tens of keys and a few hundred tensors, looked up once
// at load time, so an index would cost more than it saves.
const GgufValue* GgufFile::Find(std::string_view key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  for (const GgufTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// ---- typed getters ---------------------------------------------------------------

namespace {

Status missing(const GgufFile& f, std::string_view key) {
  return NotFound(f.path() + ": key " + quoted(key) + " not found");
}

Status wrong_type(const GgufFile& f, std::string_view key, const char* expected, const GgufValue& v) {
  std::string found = gguf_type_name(v.type);
  if (v.type == GgufType::kArray) found += std::string(" of ") + gguf_type_name(v.elem_type);
  return BadFormat(f.path() + ": key " + quoted(key) + ": expected " + expected + ", found " + found);
}

template <class T>
Status get_int(const GgufFile& f, std::string_view key, const char* tname, T* out) {
  const GgufValue* v = f.Find(key);
  if (!v) return missing(f, key);
  if (!is_integer(v->type)) return wrong_type(f, key, tname, *v);
  if (!int_fits(*v, out)) {
    return BadFormat(f.path() + ": key " + quoted(key) + ": value " + value_text(*v) +
                     " does not fit in " + tname);
  }
  return Status::Ok();
}

// f32, f64 or any integer as a float.
bool as_float(const GgufValue& v, float* out) {
  if (v.type == GgufType::kF32 || v.type == GgufType::kF64) {
    *out = static_cast<float>(v.f);
  } else if (is_signed(v.type)) {
    *out = static_cast<float>(v.i);
  } else if (is_integer(v.type)) {
    *out = static_cast<float>(v.u);
  } else {
    return false;
  }
  return true;
}

}  // namespace

Status GgufFile::GetString(std::string_view key, std::string* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (v->type != GgufType::kString) return wrong_type(*this, key, "string", *v);
  out->assign(v->str);
  return Status::Ok();
}

Status GgufFile::GetU32(std::string_view key, uint32_t* out) const { return get_int(*this, key, "u32", out); }
Status GgufFile::GetI32(std::string_view key, int32_t* out) const { return get_int(*this, key, "i32", out); }
Status GgufFile::GetU64(std::string_view key, uint64_t* out) const { return get_int(*this, key, "u64", out); }

Status GgufFile::GetF32(std::string_view key, float* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (!as_float(*v, out)) return wrong_type(*this, key, "a number", *v);
  return Status::Ok();
}

Status GgufFile::GetBool(std::string_view key, bool* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (v->type != GgufType::kBool) return wrong_type(*this, key, "bool", *v);
  *out = v->u != 0;
  return Status::Ok();
}

Status GgufFile::GetStringArray(std::string_view key, std::vector<std::string_view>* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    return wrong_type(*this, key, "array of string", *v);
  }
  *out = v->strings;
  return Status::Ok();
}

Status GgufFile::GetF32Array(std::string_view key, std::vector<float>* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (v->type != GgufType::kArray || v->elem_type == GgufType::kString ||
      v->elem_type == GgufType::kBool) {
    return wrong_type(*this, key, "array of numbers", *v);
  }
  std::vector<float> r(static_cast<size_t>(v->count));
  for (uint64_t k = 0; k < v->count; ++k) as_float(array_elem(*v, k), &r[k]);
  *out = std::move(r);
  return Status::Ok();
}

Status GgufFile::GetI32Array(std::string_view key, std::vector<int32_t>* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (v->type != GgufType::kArray || !is_integer(v->elem_type)) {
    return wrong_type(*this, key, "array of integers", *v);
  }
  std::vector<int32_t> r(static_cast<size_t>(v->count));
  for (uint64_t k = 0; k < v->count; ++k) {
    GgufValue e = array_elem(*v, k);
    if (!int_fits(e, &r[k])) {
      return BadFormat(path() + ": key " + quoted(key) + ": element [" + std::to_string(k) +
                       "] = " + value_text(e) + " does not fit in i32");
    }
  }
  *out = std::move(r);
  return Status::Ok();
}

Status GgufFile::GetU32PerLayer(std::string_view key, size_t n, std::vector<uint32_t>* out) const {
  const GgufValue* v = Find(key);
  if (!v) return missing(*this, key);
  if (is_integer(v->type)) {
    uint32_t x = 0;
    EMBER_RETURN_IF_ERROR(GetU32(key, &x));
    out->assign(n, x);
    return Status::Ok();
  }
  if (v->type != GgufType::kArray || !is_integer(v->elem_type)) {
    return wrong_type(*this, key, "an integer or an array of integers", *v);
  }
  if (v->count != n) {
    return BadFormat(path() + ": key " + quoted(key) + ": array has " + std::to_string(v->count) +
                     " entries, expected one per layer (" + std::to_string(n) + ")");
  }
  std::vector<uint32_t> r(n);
  for (size_t k = 0; k < n; ++k) {
    GgufValue e = array_elem(*v, k);
    if (!int_fits(e, &r[k])) {
      return BadFormat(path() + ": key " + quoted(key) + ": element [" + std::to_string(k) +
                       "] = " + value_text(e) + " does not fit in u32");
    }
  }
  *out = std::move(r);
  return Status::Ok();
}

Status GgufFile::GetStringOr(std::string_view key, std::string* out) const {
  return Has(key) ? GetString(key, out) : Status::Ok();
}
Status GgufFile::GetU32Or(std::string_view key, uint32_t* out) const {
  return Has(key) ? GetU32(key, out) : Status::Ok();
}
Status GgufFile::GetF32Or(std::string_view key, float* out) const {
  return Has(key) ? GetF32(key, out) : Status::Ok();
}
Status GgufFile::GetBoolOr(std::string_view key, bool* out) const {
  return Has(key) ? GetBool(key, out) : Status::Ok();
}

}  // namespace ember
