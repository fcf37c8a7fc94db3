// Load-time page faults for the matrices read in place from the file mapping (float
// types, types without a packed layout, --no-repack): every forward pass reads each of
// them whole, so left to fault in on first use their page faults land in the first
// prompt's time to first token (the bundled F32 octopus-tiny's `ember call`: about a
// quarter of it). The token embedding is left out unless it is also the output matrix:
// its rows are read one token at a time, and a large vocabulary's table would become
// resident for nothing. Repacked matrices are copies already in memory.
#pragma once
#include <cstddef>

#include "loader/gguf.h"

namespace ember {

struct ModelWeights;

// Faults in the pages of w's layer matrices and output matrix that point into `file`'s
// mapping; returns the bytes made resident.
size_t PrefaultMatrices(const GgufFile& file, const ModelWeights& w);

}  // namespace ember
