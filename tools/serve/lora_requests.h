// Adapters of `ember serve`, per request (as llama.cpp's server): the --lora adapters
// are loaded once and numbered (GET /lora-adapters); a request's "lora" list sets the
// scales for that request only, and "lora_blend" {"examples"} sets them to the Crayon
// weights ember_lora_auto_weights picks for the examples (the EXACT blend
// ΔW = Σ w_i·s_i·B_i·A_i, applied as the adapters themselves at scales w_i: no file is
// written). Weights are cached by the examples (bounded LRU), so a repeated set of
// examples costs nothing. A slot's context keeps the scales it has; a request whose
// scales differ changes them before it runs (so a request without "lora" gets the
// start scales back).
#pragma once
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../cmd_lora.h"
#include "openai.h"

namespace ember::cli::serve {

class Adapters {
 public:
  // Loads each FILE[:SCALE]; false after printing one line naming the adapter.
  bool Load(const ember_model* model, const std::vector<std::string>& specs);
  size_t size() const { return entries_.size(); }
  // [{"id", "path", "scale"}] for GET /lora-adapters.
  Json List() const;
  // The scales a request runs with (one per adapter): the start scales, its "lora"
  // list (adapters it does not name: 0), or its blend weights. *blend receives
  // {"weights": [...], "cached": bool} for a blend. false with *err (400) for an
  // unknown id or an adapter without task examples.
  bool Scales(const ember_model* model, const GenerationRequest& req, int32_t n_threads, std::vector<float>* scales,
              Json* blend, ApiError* err);
  // Sets `want` on ctx where it differs from *current (the slot's scales); false with *err.
  bool Apply(ember_context* ctx, const std::vector<float>& want, std::vector<float>* current, std::string* err) const;
  std::vector<float> start_scales() const;

 private:
  struct Entry {
    std::string path;
    float scale;
    LoraPtr lora;
  };
  bool BlendWeights(const ember_model* model, const std::vector<std::string>& examples, int32_t n_threads,
                    std::vector<float>* weights, bool* cached, ApiError* err);

  std::vector<Entry> entries_;
  static constexpr size_t kBlendCacheSize = 64;
  std::mutex cache_mu_;
  std::list<std::pair<std::string, std::vector<float>>> lru_;  // most recent first
  std::unordered_map<std::string, std::list<std::pair<std::string, std::vector<float>>>::iterator> index_;
};

}  // namespace ember::cli::serve
