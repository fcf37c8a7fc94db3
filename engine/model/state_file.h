// Saved state of a context: the tokens it holds, their keys and values as the cache stores
// them, and the last token's logits, so that a later process can continue from there
// (ember_context_save/load, `--prompt-cache`). Format: docs/FORMATS.md ("Context state").
//
// A file is tied to what its rows mean: the model (file size, a checksum of its first and
// last 16 KiB, the dimensions), the cache types of keys and values, n_ctx and the number of
// cells of each layer (a sliding-window layer's ring depends on n_batch). Loading checks all
// of them, and every length against the file's size, before reading rows; the rows and the
// rest are covered by a checksum checked at the end. The state holds no adapter: load it into
// a context with the LoRA adapters it was saved with. Nothing of the sampler is saved: its
// random generator is seeded from the generation parameters at each generate call.
#pragma once
#include <string>

#include "core/status.h"
#include "engine/model/context.h"

namespace ember {

// Writes ctx's state to `path` through a temporary file beside it, renamed over `path` once
// complete (a reader never sees half a file). IoError naming the file on failure.
Status SaveContextState(const Context& ctx, const std::string& path);

// Replaces ctx's state with the file's. On any error ctx is reset (n_past 0) and the status
// names the mismatch in one line: another model, cache type, n_ctx or ring size
// (InvalidArgument), a file too short, too long or failing its checksum (BadFormat), an
// unreadable file (IoError, NotFound).
Status LoadContextState(Context& ctx, const std::string& path);

}  // namespace ember
