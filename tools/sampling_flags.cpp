#include "sampling_flags.h"

#include <unistd.h>

#include <chrono>
#include <exception>
#include <random>

namespace ember::cli {

void declare_sampling_flags(ArgParser& p, SamplingFlags& s) {
  p.option("temp", 0, "T", &s.temp, "temperature; 0: greedy").range(0.0, 100.0);
  p.option("top-k", 0, "K", &s.top_k, "keep the K most likely tokens; 0: off").range(0, 1 << 30);
  p.option("top-p", 0, "P", &s.top_p, "nucleus sampling mass; 1: off").range(0.0, 1.0);
  p.option("min-p", 0, "P", &s.min_p, "drop tokens below P x the top probability; 0: off")
      .range(0.0, 1.0);
  p.option("repeat-penalty", 0, "R", &s.repeat_penalty, "penalty of repeated tokens; 1: off")
      .range(0.0, 100.0, /*lo_open=*/true);
  p.option("repeat-last-n", 0, "N", &s.repeat_last_n,
           "tokens the penalties look back; 0: none, -1: the context size")
      .range(-1, 1 << 24);
  p.option("presence-penalty", 0, "P", &s.presence_penalty, "presence penalty; 0: off")
      .range(-2.0, 2.0);
  p.option("frequency-penalty", 0, "P", &s.frequency_penalty, "frequency penalty; 0: off")
      .range(-2.0, 2.0);
  p.option("seed", 's', "S", &s.seed, "sampling seed, for reproducible output")
      .default_text("random, shown with --verbose");
}

uint64_t random_seed() {
  try {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  } catch (const std::exception&) {
    // No entropy device: the clock and pid are enough for a sampling seed.
    auto t = std::chrono::high_resolution_clock::now().time_since_epoch().count();
    return static_cast<uint64_t>(t) * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(::getpid());
  }
}

ember_sampling_params sampling_params(const SamplingFlags& s, int32_t ctx_size) {
  ember_sampling_params sp = ember_sampling_default_params();
  sp.temperature = s.temp;
  sp.top_k = s.top_k;
  sp.top_p = s.top_p;
  sp.min_p = s.min_p;
  sp.repeat_penalty = s.repeat_penalty;
  sp.repeat_last_n = s.repeat_last_n < 0 ? ctx_size : s.repeat_last_n;
  sp.presence_penalty = s.presence_penalty;
  sp.frequency_penalty = s.frequency_penalty;
  sp.seed = s.seed;
  return sp;
}

}  // namespace ember::cli
