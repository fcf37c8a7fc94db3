#include "lora_requests.h"

#include <sys/stat.h>

#include "../common.h"

namespace ember::cli::serve {

namespace {

bool readable_path(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

bool set_task_examples(ember_lora* l, const std::string& path) {
  std::vector<std::string> ex;
  std::string err;
  if (!read_examples(path, &ex, &err)) {
    print_error("serve", "--lora: " + err);
    return false;
  }
  std::vector<const char*> c;
  for (const std::string& e : ex) c.push_back(e.c_str());
  if (ember_status st = ember_lora_set_task_examples(l, c.data(), c.size()); st != EMBER_OK) {
    print_error("serve", library_error(st));
    return false;
  }
  return true;
}

}  // namespace

bool Adapters::Load(const ember_model* model, const std::vector<std::string>& specs) {
  for (const std::string& spec : specs) {
    Entry e;
    if (std::string why = parse_lora_spec(spec, &e.path, &e.scale); !why.empty()) {
      print_error("serve", "--lora '" + spec + "': " + why);
      return false;
    }
    // FILE@TASK_EX: the adapter's task examples for lora_blend (as `ember lora blend --weights auto`),
    // unless FILE itself exists with its '@'.
    std::string examples_path;
    if (const size_t at = e.path.rfind('@'); at != std::string::npos && !readable_path(e.path)) {
      examples_path = e.path.substr(at + 1);
      e.path.resize(at);
    }
    ember_lora* l = nullptr;
    if (ember_status st = ember_lora_load(model, e.path.c_str(), &l); st != EMBER_OK) {
      print_error("serve", library_error(st));
      return false;
    }
    e.lora.reset(l);
    if (!examples_path.empty() && !set_task_examples(l, examples_path)) return false;
    entries_.push_back(std::move(e));
  }
  return true;
}

Json Adapters::List() const {
  Json out = Json::array();
  for (size_t i = 0; i < entries_.size(); ++i)
    out.push_back({{"id", i}, {"path", entries_[i].path}, {"scale", entries_[i].scale}});
  return out;
}

std::vector<float> Adapters::start_scales() const {
  std::vector<float> s;
  for (const Entry& e : entries_) s.push_back(e.scale);
  return s;
}

bool Adapters::BlendWeights(const ember_model* model, const std::vector<std::string>& examples, int32_t n_threads,
                            std::vector<float>* weights, bool* cached, ApiError* err) {
  std::string key;
  for (const std::string& e : examples) key += std::to_string(e.size()) + ":" + e;  // length-prefixed: unambiguous
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (auto it = index_.find(key); it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      *weights = it->second->second;
      *cached = true;
      return true;
    }
  }
  std::vector<const ember_lora*> raw;
  for (const Entry& e : entries_) raw.push_back(e.lora.get());
  std::vector<const char*> ex;
  for (const std::string& e : examples) ex.push_back(e.c_str());
  weights->assign(raw.size(), 0.0f);
  // Centered similarity at the default temperature: `ember lora blend --weights auto`'s defaults.
  if (ember_status st = ember_lora_auto_weights(model, raw.data(), raw.size(), ex.data(), ex.size(), 1, 0.0f,
                                                n_threads, nullptr, weights->data());
      st != EMBER_OK) {
    err->message = "lora_blend: " + library_error(st);
    err->code = "invalid_value";
    return false;
  }
  *cached = false;
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (index_.count(key)) return true;  // another request computed it meanwhile
  lru_.emplace_front(key, *weights);
  index_[key] = lru_.begin();
  if (lru_.size() > kBlendCacheSize) {
    index_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return true;
}

bool Adapters::Scales(const ember_model* model, const GenerationRequest& req, int32_t n_threads,
                      std::vector<float>* scales, Json* blend, ApiError* err) {
  *scales = start_scales();
  if (req.lora) {
    scales->assign(entries_.size(), 0.0f);
    for (const AdapterScale& a : *req.lora) {
      if (a.id < 0 || a.id >= static_cast<int32_t>(entries_.size())) {
        err->message = "lora: unknown adapter id " + std::to_string(a.id) + " (the server has " +
                       std::to_string(entries_.size()) + "; see GET /lora-adapters)";
        err->code = "invalid_value";
        return false;
      }
      (*scales)[a.id] = a.scale;
    }
  }
  if (req.blend_examples) {
    if (entries_.size() < 1) {
      err->message = "lora_blend: the server has no adapters (start it with --lora)";
      err->code = "invalid_value";
      return false;
    }
    bool cached = false;
    if (!BlendWeights(model, *req.blend_examples, n_threads, scales, &cached, err)) return false;
    Json w = Json::array();
    for (float x : *scales) w.push_back(x);
    *blend = {{"weights", w}, {"cached", cached}};
  }
  return true;
}

bool Adapters::Apply(ember_context* ctx, const std::vector<float>& want, std::vector<float>* current,
                     std::string* err) const {
  current->resize(entries_.size(), 0.0f);
  for (size_t i = 0; i < entries_.size(); ++i) {
    if ((*current)[i] == want[i]) continue;
    const ember_status st = want[i] == 0.0f ? ember_context_remove_lora(ctx, entries_[i].lora.get())
                                            : ember_context_set_lora(ctx, entries_[i].lora.get(), want[i]);
    if (st != EMBER_OK && !(want[i] == 0.0f && st == EMBER_ERR_NOT_FOUND)) {
      *err = library_error(st);
      return false;
    }
    (*current)[i] = want[i];
  }
  return true;
}

}  // namespace ember::cli::serve
