// A fixture GGUF rewritten in memory with a few changes: keys set, tensors dropped,
// replaced or added. Header-only: only test executables that link the GGUF writer
// (ember_gguf_writer or ember_tools) include it.
#pragma once
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/gguf_writer.h"

namespace ember::testing {

struct GgufEdit {
  // Called after every key of the source was copied (a key set again keeps its place).
  std::function<void(GgufWriter&)> keys = {};
  // Called for each source tensor; true: handled (dropped, or written by the callback),
  // false: copied as is. Unset: every tensor copied.
  std::function<bool(const GgufTensor&, GgufWriter&)> tensor = {};
  // Called after the tensors: tensors to add.
  std::function<void(GgufWriter&)> extra = {};
};

// The bytes of `path` with `e` applied; empty (and a test failure) on error.
inline std::vector<uint8_t> edit_gguf(const std::string& path, const GgufEdit& e) {
  std::unique_ptr<GgufFile> src;
  Status s = GgufFile::Open(path, &src);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  GgufWriter w;
  w.CopyMetadata(*src);
  if (e.keys) e.keys(w);
  for (const GgufTensor& t : src->tensors()) {
    if (e.tensor && e.tensor(t, w)) continue;
    s = w.AddTensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  if (e.extra) e.extra(w);
  return w.Serialize();
}

// A 1-D F32 tensor added to `w`.
inline void add_f32(GgufWriter& w, const std::string& name, const std::vector<float>& v) {
  Status s = w.AddTensor(name, DType::F32, {static_cast<int64_t>(v.size())}, v.data(), v.size() * sizeof(float));
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// The F32 values of tensor t (which must be F32).
inline std::vector<float> f32_values(const GgufTensor& t) {
  EXPECT_EQ(t.type, DType::F32) << t.name;
  std::vector<float> v(t.n_elements);
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

}  // namespace ember::testing
