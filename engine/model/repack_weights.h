// Load-time repacking (issue 13): the layer matrices (and an untied output matrix) whose
// type the kernel table reads fastest row-interleaved (TypeKernels::packing) are copied
// once into that layout (quant/repack.h), in one 64-byte-aligned buffer the Model owns;
// the mapped file's pages they came from are released, so resident memory holds each
// weight once. token_embd is never repacked: its rows are looked up one at a time.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "core/status.h"
#include "kernels/kernels.h"
#include "loader/gguf.h"

namespace ember {

struct ModelWeights;

struct RepackedWeights {
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> buffer;  // every repacked matrix
  uint64_t bytes = 0;                     // repacked bytes (the buffer's size)
  uint64_t released = 0;                  // bytes of the mapping given back to the kernel
  size_t matrices = 0;
  double ms = 0.0;
};

// Repacks w's matrices for table t; MatViews then point into out->buffer with their
// packing set. Nothing is changed when no matrix can be repacked. OutOfMemory when the
// buffer cannot be allocated (the model is then unusable: the caller fails the load).
Status RepackWeights(const kernels::Table& t, const GgufFile& file, ModelWeights* w, RepackedWeights* out);

}  // namespace ember
