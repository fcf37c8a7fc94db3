// The GGUF writer (format: loader/gguf.h), one for every file Ember writes: test
// fixtures, `ember quantize` / `ember synth` (streamed), LoRA adapters and merged models.
//
// GgufWriter collects metadata and tensors: with their bytes (AddTensor, for files
// built in memory) or only their shape (AddTensorInfo, for bytes streamed later).
// GgufStreamWriter writes the file: the header a GgufWriter lays out, then tensor data
// piece by piece, so a model never has to be held in memory. GgufWriter::Write() is
// the stream writer fed with the tensors it holds, so both produce the same bytes.
//
// Layout: v3; metadata in insertion order (a key set again keeps its position and takes
// the new value); tensor data aligned to `general.alignment` (32 unless set), nothing
// padded after the last tensor, so every strict prefix of a written file is invalid.
// Files are written to a unique temporary sibling and renamed into place: a failed or
// cancelled write leaves nothing behind and a reader never sees half a file.
//
// Not part of the runtime library (libember): compiled into the offline library
// (libember-tools) and the tests; no runtime path writes GGUF.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "loader/gguf.h"
#include "quant/types.h"

namespace ember {

// Serialize() lays out an invalid `general.alignment` at 32 (for crafting bad files) and
// writes zeros for AddTensorInfo tensors; Write() refuses both with kInvalidArgument.
class GgufWriter {
 public:
  void SetU8(std::string key, uint8_t v);
  void SetI8(std::string key, int8_t v);
  void SetU16(std::string key, uint16_t v);
  void SetI16(std::string key, int16_t v);
  void SetU32(std::string key, uint32_t v);
  void SetI32(std::string key, int32_t v);
  void SetU64(std::string key, uint64_t v);
  void SetI64(std::string key, int64_t v);
  void SetF32(std::string key, float v);
  void SetF64(std::string key, double v);
  void SetBool(std::string key, bool v);
  void SetString(std::string key, std::string v);
  void SetStringArray(std::string key, std::vector<std::string> v);
  void SetF32Array(std::string key, std::vector<float> v);
  void SetI32Array(std::string key, std::vector<int32_t> v);
  void SetU32Array(std::string key, std::vector<uint32_t> v);
  // Copies every key of `src` (used by quantize/convert to keep metadata).
  void CopyMetadata(const GgufFile& src);
  // `ne` has n_dims entries, ne[0] contiguous; `data` holds exactly the tensor bytes.
  Status AddTensor(std::string name, DType type, std::vector<int64_t> ne, const void* data,
                   size_t nbytes);
  // A tensor whose bytes a GgufStreamWriter appends later.
  Status AddTensorInfo(std::string name, DType type, std::vector<int64_t> ne);
  std::vector<uint8_t> Serialize() const;
  Status Write(const std::string& path) const;  // via a temporary file, then rename

 private:
  friend class GgufStreamWriter;
  struct Kv { std::string key; GgufType type; GgufType elem; std::vector<uint8_t> payload; uint64_t count; };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    uint64_t nbytes;            // from the shape
    bool has_data;              // false: AddTensorInfo (streamed)
    std::vector<uint8_t> data;  // nbytes bytes when has_data
  };
  void Put(std::string key, GgufType type, const void* v, size_t n);
  void PutArray(std::string key, GgufType elem, std::vector<uint8_t> payload, uint64_t count);
  void Upsert(Kv kv);  // a key set twice keeps its first position, takes the new value
  // Checks name, type and shape; *nbytes receives the bytes the shape needs.
  Status CheckTensor(const std::string& name, DType type, const std::vector<int64_t>& ne, uint64_t* nbytes) const;
  bool AllTensorsHaveData() const;
  // The tensor data alignment: `general.alignment` when it is a valid u32 power of
  // two, 32 otherwise; `*valid` false when the key is present but unusable.
  size_t Alignment(bool* valid) const;
  // Everything before the first tensor's data (header, metadata, tensor infos,
  // padding); `offsets` receives each tensor's offset within the data section.
  std::vector<uint8_t> HeaderBytes(size_t alignment, std::vector<uint64_t>* offsets) const;
  std::vector<Kv> kv_;
  std::vector<Tensor> tensors_;
};

// Writes a GGUF file whose tensor data arrives piece by piece. Data goes to a temporary
// sibling file; Finish() fsyncs and renames it into place; destruction without Finish()
// removes it.
class GgufStreamWriter {
 public:
  struct Tensor {
    std::string name;
    DType type = DType::F32;
    std::vector<int64_t> ne;  // ne[0] contiguous
  };
  GgufStreamWriter() = default;
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;
  ~GgufStreamWriter();

  // `meta` holds the metadata and no tensors; `tensors` are the infos, in file order.
  // `alignment`: a power of two, equal to the file's general.alignment when that key is set.
  Status Open(const std::string& path, const GgufWriter& meta, std::vector<Tensor> tensors, size_t alignment);
  // `layout` holds the metadata and every tensor (with or without data; data held is
  // not written: Append() it like any other).
  Status Open(const std::string& path, const GgufWriter& layout, size_t alignment);
  // The next n bytes of tensor data, in tensor order (a tensor may come in any number
  // of pieces; padding between tensors is written automatically).
  Status Append(const void* data, size_t n);
  Status Finish();
  // Bytes a tensor occupies.
  uint64_t tensor_bytes(size_t i) const { return sizes_[i]; }

 private:
  Status Flush();
  Status Fail(const std::string& what);
  void Abort();
  std::string path_, tmp_;
  int fd_ = -1;
  std::vector<uint64_t> sizes_, offsets_;
  size_t cur_ = 0;         // tensor being written
  uint64_t cur_done_ = 0;  // its bytes written so far
  uint64_t pos_ = 0;       // bytes of the data section written (padding included)
  std::vector<uint8_t> buf_;
};

}  // namespace ember
