// Function registries (functions.json / GGUF ember.functions) against octopus-tiny's
// vocabulary: parsing, the constrained-decoding automaton built from what parses, and
// the call parser on token ids taken from the input (what a model could generate).
// Input: "<registry JSON>\0<little-endian int32 token ids>" (no NUL: JSON only).
#include <cstring>
#include <vector>

#include "engine/calls/call.h"
#include "engine/calls/functions.h"
#include "tests/fuzz/fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace {
const ember::Model& base() { return ember::fuzz::FixtureModel("models/octopus-tiny/octopus-tiny-q4_0.gguf"); }
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::Silence();
  base();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ember;
  const auto [json, id_bytes] = fuzz::SplitAtNul(data, size);
  const Tokenizer& tok = base().tokenizer();
  FunctionRegistry reg;
  if (!FunctionRegistry::Parse(json, "fuzz-functions.json", tok, &reg).ok()) return 0;
  CallAutomaton automaton;
  if (!CallAutomaton::Build(reg, tok, &automaton).ok()) return 0;
  std::vector<int32_t> ids(id_bytes.size() / 4);
  if (!ids.empty()) std::memcpy(ids.data(), id_bytes.data(), ids.size() * 4);
  CallAutomaton::State s = automaton.start();
  for (int32_t id : ids) {  // the automaton on every id, in range or not (Next must say dead)
    s = automaton.Next(s, id);
    if (s == CallAutomaton::kDead) break;
  }
  (void)ParseCall(reg, tok, ids.data(), ids.size());
  return 0;
}
