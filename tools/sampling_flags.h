// The sampling flags shared by `ember run` and `ember chat` (llama.cpp's names and
// defaults): declared on a command's ArgParser, turned into ember_sampling_params.
#pragma once
#include <cstdint>

#include "args.h"
#include "ember/ember.h"

namespace ember::cli {

struct SamplingFlags {
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.0f;
  float presence_penalty = 0.0f, frequency_penalty = 0.0f;
  int32_t top_k = 40, repeat_last_n = 64;
  uint64_t seed = 0;
};

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n,
// --presence-penalty, --frequency-penalty, --seed/-s.
void declare_sampling_flags(ArgParser& p, SamplingFlags& s);
// A seed for runs without --seed (the entropy device, else the clock and pid).
uint64_t random_seed();
// The flags as library parameters; repeat_last_n -1 means the whole context (ctx_size).
ember_sampling_params sampling_params(const SamplingFlags& s, int32_t ctx_size);

}  // namespace ember::cli
