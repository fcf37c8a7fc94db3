// Shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp; docs/TESTING.md, "Fuzzing").
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/log.h"
#include "engine/model/model.h"

namespace ember::fuzz {

// The fixtures directory: $EMBER_FIXTURES, else the build's default (as the tests).
inline std::string Fixtures() {
  const char* env = std::getenv("EMBER_FIXTURES");
  return env && *env ? env : EMBER_DEFAULT_FIXTURES;
}

// Quiet logs (a fuzzer prints millions of rejected inputs otherwise).
inline void Silence() { set_log_level(LogLevel::kNone); }

// A model every run of a target shares (loaded once; aborts when the fixture is missing:
// a fuzz run without its fixtures tests nothing).
inline const Model& FixtureModel(const std::string& relative) {
  static std::unique_ptr<Model> model;
  if (!model) {
    const std::string path = Fixtures() + "/" + relative;
    if (!Model::Load(path, {}, &model).ok()) {
      std::fprintf(stderr, "fuzz: cannot load fixture %s\n", path.c_str());
      std::abort();
    }
  }
  return *model;
}

// Splits an input at its first NUL: the part before and the rest (empty when none).
inline std::pair<std::string_view, std::string_view> SplitAtNul(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  if (nul == std::string_view::npos) return {all, {}};
  return {all.substr(0, nul), all.substr(nul + 1)};
}

}  // namespace ember::fuzz
