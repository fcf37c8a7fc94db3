#include "engine/model/state_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "quant/types.h"

namespace ember {
namespace {

// Fields are written in the machine's byte order: little-endian on every target Ember builds
// for (x86-64, AArch64), as GGUF itself.
constexpr char kMagic[8] = {'E', 'M', 'B', 'R', 'S', 'T', 'A', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kModelProbeBytes = 16384;  // of the model file's start and end, hashed

// FNV-1a, 64 bits: detects a damaged file (not an adversary).
struct Fnv {
  uint64_t h = 14695981039346656037ull;
  void Add(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
};

// The identity of a model file: its first and last kModelProbeBytes (the header, the
// metadata, the end of the tensor data), hashed.
uint64_t ModelChecksum(const Model& m) {
  const uint8_t* d = m.gguf().file_data();
  const size_t n = m.gguf().file_size();
  Fnv f;
  if (!d) return 0;
  const size_t head = std::min(n, kModelProbeBytes);
  f.Add(d, head);
  const size_t tail_start = std::max(head, n > kModelProbeBytes ? n - kModelProbeBytes : 0);
  f.Add(d + tail_start, n - tail_start);
  return f.h;
}

// Everything before the rows, in file order (after the magic and the version).
struct Header {
  uint64_t model_bytes = 0, model_sum = 0;
  int32_t n_vocab = 0, n_layer = 0, n_embd = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0;
  uint32_t type_k = 0, type_v = 0;
  int32_t n_ctx = 0, n_past = 0;
  uint32_t has_logits = 0;
  std::vector<int32_t> cells;  // [n_layer]
};
constexpr size_t kFixedBytes = sizeof kMagic + 4 + 8 + 8 + 6 * 4 + 2 * 4 + 2 * 4 + 4;  // before the cells

Header Describe(const Context& ctx) {
  const ModelConfig& c = ctx.model().config();
  const KvCache& kv = ctx.kv_cache();
  Header h;
  h.model_bytes = ctx.model().gguf().file_size();
  h.model_sum = ModelChecksum(ctx.model());
  h.n_vocab = c.n_vocab, h.n_layer = c.n_layer, h.n_embd = c.n_embd;
  h.n_head_kv = c.n_head_kv, h.head_dim = c.head_dim, h.head_dim_v = c.head_dim_v;
  h.type_k = static_cast<uint32_t>(kv.type_k());
  h.type_v = static_cast<uint32_t>(kv.type_v());
  h.n_ctx = ctx.n_ctx();
  h.n_past = ctx.n_past();
  h.has_logits = ctx.logits(-1) && ctx.hidden(-1) ? 1 : 0;
  for (int32_t l = 0; l < c.n_layer; ++l) h.cells.push_back(kv.cells(l));
  return h;
}

// Positions a layer holds after n_past: the last `cells` of them.
int64_t HeldRows(int32_t cells, int32_t n_past) { return n_past > cells ? cells : n_past; }

// Bytes after the header: tokens, rows, logits and hidden state, checksum.
uint64_t PayloadBytes(const Header& h, const KvCache& kv) {
  uint64_t rows = 0;
  for (int32_t cells : h.cells) rows += static_cast<uint64_t>(HeldRows(cells, h.n_past)) * h.n_head_kv;
  uint64_t b = 4ull * h.n_past + rows * (kv.k_row_bytes() + kv.v_row_bytes());
  if (h.has_logits) b += 4ull * (static_cast<uint64_t>(h.n_vocab) + h.n_embd);
  return b + 8;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Writes and hashes; remembers the first failure.
struct Writer {
  std::FILE* f;
  Fnv sum;
  bool ok = true;
  void Put(const void* p, size_t n) {
    sum.Add(p, n);
    if (ok && n && std::fwrite(p, 1, n, f) != n) ok = false;
  }
  template <class T>
  void Field(T v) {
    Put(&v, sizeof v);
  }
};

struct Reader {
  std::FILE* f;
  Fnv sum;
  bool Get(void* p, size_t n) {
    if (n && std::fread(p, 1, n, f) != n) return false;
    sum.Add(p, n);
    return true;
  }
  template <class T>
  bool Field(T* v) {
    return Get(v, sizeof *v);
  }
};

void WriteHeader(Writer& w, const Header& h) {
  w.Put(kMagic, sizeof kMagic);
  w.Field(kVersion);
  w.Field(h.model_bytes), w.Field(h.model_sum);
  for (int32_t v : {h.n_vocab, h.n_layer, h.n_embd, h.n_head_kv, h.head_dim, h.head_dim_v}) w.Field(v);
  w.Field(h.type_k), w.Field(h.type_v);
  w.Field(h.n_ctx), w.Field(h.n_past);
  w.Field(h.has_logits);
  w.Put(h.cells.data(), h.cells.size() * sizeof(int32_t));
}

// The rows of the held positions, layer by layer: keys then values, head by head, position
// by position. `rw(row, bytes)` writes or reads one row; false stops.
template <class Kv, class RowFn>
bool ForEachRow(const Header& h, Kv& kv, RowFn rw) {
  for (int32_t l = 0; l < h.n_layer; ++l) {
    const int32_t first = kv.first_held(l, h.n_past);
    for (bool value : {false, true})
      for (int32_t head = 0; head < h.n_head_kv; ++head)
        for (int32_t pos = first; pos < h.n_past; ++pos)
          if (!rw(value ? kv.v_row(l, head, pos) : kv.k_row(l, head, pos), value ? kv.v_row_bytes() : kv.k_row_bytes()))
            return false;
  }
  return true;
}

Status WriteState(const Context& ctx, std::FILE* f) {
  const Header h = Describe(ctx);
  Writer w{f, {}};
  WriteHeader(w, h);
  w.Put(ctx.tokens().data(), ctx.tokens().size() * sizeof(int32_t));
  ForEachRow(h, ctx.kv_cache(), [&](const uint8_t* row, size_t n) {
    w.Put(row, n);
    return w.ok;
  });
  if (h.has_logits) {
    w.Put(ctx.logits(-1), sizeof(float) * h.n_vocab);
    w.Put(ctx.hidden(-1), sizeof(float) * h.n_embd);
  }
  const uint64_t sum = w.sum.h;
  w.Field(sum);
  return w.ok ? Status::Ok() : IoError(std::strerror(errno));
}

std::string Str(const char* what, int64_t saved, int64_t here) {
  return std::string(what) + " " + std::to_string(saved) + ", this context " + std::to_string(here);
}

const char* TypeName(uint32_t t) { return t <= 255 ? dtype_name(static_cast<DType>(t)) : "?"; }

// The first difference between what the file was saved from and this context; "" if none.
std::string Mismatch(const Header& f, const Header& c) {
  if (f.model_bytes != c.model_bytes || f.model_sum != c.model_sum || f.n_vocab != c.n_vocab ||
      f.n_layer != c.n_layer || f.n_embd != c.n_embd || f.n_head_kv != c.n_head_kv || f.head_dim != c.head_dim ||
      f.head_dim_v != c.head_dim_v)
    return "saved from another model (a " + std::to_string(f.model_bytes) + "-byte file, " +
           std::to_string(f.n_layer) + " layers, n_embd " + std::to_string(f.n_embd) + "; this one is " +
           std::to_string(c.model_bytes) + " bytes, " + std::to_string(c.n_layer) + " layers, n_embd " +
           std::to_string(c.n_embd) + (f.model_bytes == c.model_bytes ? ", other contents)" : ")");
  if (f.type_k != c.type_k || f.type_v != c.type_v)
    return std::string("saved with cache types K ") + TypeName(f.type_k) + ", V " + TypeName(f.type_v) +
           ", this context has K " + TypeName(c.type_k) + ", V " + TypeName(c.type_v);
  if (f.n_ctx != c.n_ctx) return Str("saved with n_ctx", f.n_ctx, c.n_ctx);
  return "";
}

// The header after the magic; false when the file ends first.
bool ReadHeader(Reader& r, Header* h) {
  bool ok = r.Field(&h->model_bytes) && r.Field(&h->model_sum);
  for (int32_t* v : {&h->n_vocab, &h->n_layer, &h->n_embd, &h->n_head_kv, &h->head_dim, &h->head_dim_v})
    ok = ok && r.Field(v);
  return ok && r.Field(&h->type_k) && r.Field(&h->type_v) && r.Field(&h->n_ctx) && r.Field(&h->n_past) &&
         r.Field(&h->has_logits);
}

// Checks the header against the context and the file's size: "" when the rest can be read.
std::string CheckHeader(Reader& r, const Context& ctx, uint64_t file_bytes, Header* h) {
  const Header here = Describe(ctx);
  if (std::string m = Mismatch(*h, here); !m.empty()) return m;
  if (h->n_past < 0 || h->n_past > h->n_ctx || h->has_logits > 1)
    return "corrupt header (n_past " + std::to_string(h->n_past) + ", n_ctx " + std::to_string(h->n_ctx) + ")";
  if (file_bytes < kFixedBytes + 4ull * h->n_layer) return "truncated: " + std::to_string(file_bytes) + " bytes";
  h->cells.resize(h->n_layer);
  if (!r.Get(h->cells.data(), h->cells.size() * sizeof(int32_t))) return "cannot read the layers' cells";
  for (int32_t l = 0; l < h->n_layer; ++l)
    if (h->cells[l] != here.cells[l])
      return "layer " + std::to_string(l) + " was saved with " + std::to_string(h->cells[l]) +
             " cache cells, this context has " + std::to_string(here.cells[l]) +
             " (a sliding-window ring is window + n_batch: use the same n_batch)";
  const uint64_t want = kFixedBytes + 4ull * h->n_layer + PayloadBytes(*h, ctx.kv_cache());
  if (file_bytes != want)
    return std::to_string(file_bytes) + " bytes where its header says " + std::to_string(want) +
           (file_bytes < want ? " (truncated)" : " (trailing bytes)");
  return "";
}

// Reads the tokens, rows, logits and checksum into ctx (reset first). "" on success.
std::string ReadBody(Reader& r, Context& ctx, const Header& h) {
  ctx.Reset();
  std::vector<int32_t> ids(h.n_past);
  if (!r.Get(ids.data(), ids.size() * sizeof(int32_t))) return "cannot read the tokens";
  for (int32_t i = 0; i < h.n_past; ++i)
    if (ids[i] < 0 || ids[i] >= h.n_vocab) return "token " + std::to_string(i) + " is outside the vocabulary";
  if (!ForEachRow(h, ctx.kv_cache(), [&](uint8_t* row, size_t n) { return r.Get(row, n); }))
    return "cannot read the cache rows";
  std::vector<float> logits(h.has_logits ? h.n_vocab : 0), hidden(h.has_logits ? h.n_embd : 0);
  if (!r.Get(logits.data(), logits.size() * sizeof(float)) || !r.Get(hidden.data(), hidden.size() * sizeof(float)))
    return "cannot read the logits";
  const uint64_t computed = r.sum.h;
  uint64_t stored = 0;
  if (!r.Field(&stored)) return "cannot read the checksum";
  if (stored != computed) return "checksum mismatch (the file is corrupt)";
  ctx.Restore(ids.data(), h.n_past, h.has_logits ? logits.data() : nullptr, h.has_logits ? hidden.data() : nullptr);
  return "";
}

// A context whose forward pass does not go through a KvCache has no rows to save.
Status CheckCache(const Context& ctx) {
  if (ctx.kv_cache().n_layer() == ctx.model().config().n_layer) return Status::Ok();
  return Internal("state file: the context has no typed KV cache");
}

}  // namespace

Status SaveContextState(const Context& ctx, const std::string& path) {
  EMBER_RETURN_IF_ERROR(CheckCache(ctx));
  if (ctx.n_exact() < ctx.n_past())
    return InvalidArgument("state file " + path +
                           ": the context was shifted (its cache is no longer what its tokens give); "
                           "save before a context shift");
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  File f(std::fopen(tmp.c_str(), "wb"));
  if (!f) return IoError("state file " + tmp + ": cannot create: " + std::strerror(errno));
  Status s = WriteState(ctx, f.get());
  if (s.ok() && std::fflush(f.get()) != 0) s = IoError(std::strerror(errno));
  // On disk before the rename: a crash leaves the old file or the new one, never half of one.
  if (s.ok() && ::fsync(::fileno(f.get())) != 0) s = IoError(std::string("fsync: ") + std::strerror(errno));
  if (std::fclose(f.release()) != 0 && s.ok()) s = IoError(std::strerror(errno));
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) s = IoError(std::string("rename: ") + std::strerror(errno));
  if (!s.ok()) {
    std::remove(tmp.c_str());
    return IoError("state file " + path + ": cannot write: " + s.message());
  }
  return Status::Ok();
}

Status LoadContextState(Context& ctx, const std::string& path) {
  EMBER_RETURN_IF_ERROR(CheckCache(ctx));
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) {
    const int e = errno;
    ctx.Reset();
    const std::string m = "state file " + path + ": cannot open: " + std::strerror(e);
    return e == ENOENT ? NotFound(m) : IoError(m);
  }
  struct stat st {};
  const uint64_t bytes = ::fstat(::fileno(f.get()), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  Reader r{f.get(), {}};
  char magic[sizeof kMagic];
  uint32_t version = 0;
  Header h;
  Status s;
  if (bytes < kFixedBytes) {
    s = BadFormat("truncated: " + std::to_string(bytes) + " bytes, shorter than a header");
  } else if (!r.Get(magic, sizeof magic) || std::memcmp(magic, kMagic, sizeof magic) != 0) {
    s = BadFormat("not an Ember state file (bad magic)");
  } else if (!r.Field(&version) || version != kVersion) {
    s = Unsupported("version " + std::to_string(version) + ", this build reads version " + std::to_string(kVersion));
  } else if (!ReadHeader(r, &h)) {
    s = BadFormat("cannot read the header");
  } else if (std::string m = CheckHeader(r, ctx, bytes, &h); !m.empty()) {
    const bool mismatch = m.rfind("saved ", 0) == 0 || m.rfind("layer ", 0) == 0;
    s = mismatch ? InvalidArgument(m) : BadFormat(m);
  } else if (std::string m2 = ReadBody(r, ctx, h); !m2.empty()) {
    s = BadFormat(m2);
  }
  if (!s.ok()) {
    ctx.Reset();
    return Status(s.code(), "state file " + path + ": " + s.message());
  }
  return Status::Ok();
}

}  // namespace ember
