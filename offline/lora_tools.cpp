#include "offline/lora_tools.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include <Eigen/Dense>

#include "engine/model/context.h"
#include "quant/fp16.h"
#include "tokenizer/tokenizer.h"

namespace ember {
namespace {

// A weight's factors as float in the canonical orientation: A [r][in], B [out][r]
// (embeddings: in = n_vocab, out = n_embd).
struct Canon {
  int32_t r = 0, in = 0, out = 0;
  std::vector<float> a, b;
};

float elem(const LoraWeight& w, const std::vector<uint8_t>& v, size_t i) { return lora_element(w.type, v, i); }

Canon canon(const LoraWeight& w) {
  Canon c;
  c.r = w.rank, c.in = w.n_in, c.out = w.n_out;
  c.a.resize(static_cast<size_t>(c.r) * c.in);
  c.b.resize(static_cast<size_t>(c.out) * c.r);
  for (int32_t k = 0; k < c.r; ++k)
    for (int32_t i = 0; i < c.in; ++i)
      c.a[static_cast<size_t>(k) * c.in + i] =
          elem(w, w.a, w.embedding ? static_cast<size_t>(i) * c.r + k : static_cast<size_t>(k) * c.in + i);
  for (size_t j = 0; j < c.b.size(); ++j) c.b[j] = elem(w, w.b, j);
  return c;
}

// A LoraWeight (F32) for `proto`'s target from canonical factors.
LoraWeight from_canon(const LoraWeight& proto, const Canon& c) {
  LoraWeight w;
  w.target = proto.target;
  w.layer = proto.layer;
  w.proj = proto.proj;
  w.embedding = proto.embedding;
  w.rank = c.r, w.n_in = c.in, w.n_out = c.out;
  w.type = DType::F32;
  std::vector<float> a(c.a.size());
  for (int32_t k = 0; k < c.r; ++k)
    for (int32_t i = 0; i < c.in; ++i)
      a[w.embedding ? static_cast<size_t>(i) * c.r + k : static_cast<size_t>(k) * c.in + i] =
          c.a[static_cast<size_t>(k) * c.in + i];
  w.a.resize(a.size() * 4);
  std::memcpy(w.a.data(), a.data(), w.a.size());
  w.b.resize(c.b.size() * 4);
  std::memcpy(w.b.data(), c.b.data(), w.b.size());
  return w;
}

}  // namespace

Status lora_blend(const Model& model, const std::vector<LoraBlendInput>& inputs, LoraBlendMode mode,
                  int32_t rank, std::unique_ptr<LoraAdapter>* out) {
  if (inputs.empty()) return InvalidArgument("lora blend: no adapters");
  if (mode == LoraBlendMode::kSvd && rank <= 0) return InvalidArgument("lora blend: svd needs a rank > 0");
  // Targets in a fixed order, each with its (weight, input) contributions.
  std::map<std::string, std::vector<std::pair<const LoraWeight*, float>>> targets;
  for (const LoraBlendInput& in : inputs) {
    if (!in.adapter) return InvalidArgument("lora blend: null adapter");
    if (&in.adapter->model() != &model) return InvalidArgument(in.adapter->name() + ": for another model");
    for (const LoraWeight& w : in.adapter->weights()) targets[w.target].push_back({&w, in.weight});
  }
  std::vector<Canon> blended;
  std::vector<const LoraWeight*> protos;
  for (const auto& [name, parts] : targets) {
    Canon r;
    r.in = parts[0].first->n_in;
    r.out = parts[0].first->n_out;
    if (mode == LoraBlendMode::kExact || mode == LoraBlendMode::kSvd) {
      for (const auto& [w, wt] : parts) r.r += w->rank;
      r.a.assign(static_cast<size_t>(r.r) * r.in, 0.0f);
      r.b.assign(static_cast<size_t>(r.out) * r.r, 0.0f);
      int32_t k0 = 0;
      for (const auto& [w, wt] : parts) {
        Canon c = canon(*w);
        const float s = wt * w->factor;
        std::copy(c.a.begin(), c.a.end(), r.a.begin() + static_cast<size_t>(k0) * r.in);
        for (int32_t o = 0; o < r.out; ++o)
          for (int32_t k = 0; k < c.r; ++k)
            r.b[static_cast<size_t>(o) * r.r + k0 + k] = s * c.b[static_cast<size_t>(o) * c.r + k];
        k0 += c.r;
      }
      if (mode == LoraBlendMode::kSvd) {
        using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        Mat A(r.r, r.in), B(r.out, r.r);
        for (size_t j = 0; j < r.a.size(); ++j) A.data()[j] = r.a[j];
        for (size_t j = 0; j < r.b.size(); ++j) B.data()[j] = r.b[j];
        // ΔW = B·A has rank <= k = Σ r_i: with B = Q_b R_b and A^T = Q_a R_a (thin QR),
        // ΔW = Q_b (R_b R_a^T) Q_a^T, so the SVD of the k x k core gives ΔW's exactly.
        const Eigen::Index kr = r.r;  // total rank
        Eigen::HouseholderQR<Eigen::MatrixXd> qb(B), qa(A.transpose());
        Eigen::MatrixXd Qb = qb.householderQ() * Eigen::MatrixXd::Identity(r.out, std::min<Eigen::Index>(kr, r.out));
        Eigen::MatrixXd Qa = qa.householderQ() * Eigen::MatrixXd::Identity(r.in, std::min<Eigen::Index>(kr, r.in));
        Eigen::MatrixXd Rb = qb.matrixQR().topRows(Qb.cols()).triangularView<Eigen::Upper>();
        Eigen::MatrixXd Ra = qa.matrixQR().topRows(Qa.cols()).triangularView<Eigen::Upper>();
        Eigen::MatrixXd core = Rb * Ra.transpose();
        Eigen::JacobiSVD<Eigen::MatrixXd> svd(core, Eigen::ComputeThinU | Eigen::ComputeThinV);
        const Eigen::MatrixXd U = Qb * svd.matrixU(), V = Qa * svd.matrixV();
        const Eigen::VectorXd S = svd.singularValues();  // descending
        const int32_t R = std::min<int32_t>(rank, static_cast<int32_t>(S.size()));
        Canon t;
        t.r = R, t.in = r.in, t.out = r.out;
        t.a.resize(static_cast<size_t>(R) * r.in);
        t.b.resize(static_cast<size_t>(r.out) * R);
        for (int32_t k = 0; k < R; ++k) {
          const double sq = std::sqrt(S(k));
          for (int32_t i = 0; i < r.in; ++i)
            t.a[static_cast<size_t>(k) * r.in + i] = static_cast<float>(sq * V(i, k));
          for (int32_t o = 0; o < r.out; ++o)
            t.b[static_cast<size_t>(o) * R + k] = static_cast<float>(sq * U(o, k));
        }
        r = std::move(t);
      }
    } else {  // kAverage
      r.r = parts[0].first->rank;
      r.a.assign(static_cast<size_t>(r.r) * r.in, 0.0f);
      r.b.assign(static_cast<size_t>(r.out) * r.r, 0.0f);
      for (const auto& [w, wt] : parts) {
        if (w->rank != r.r)
          return InvalidArgument("lora blend: average mode needs equal ranks, '" + name + "' has rank " +
                                 std::to_string(w->rank) + " and " + std::to_string(r.r));
        Canon c = canon(*w);
        for (size_t j = 0; j < r.a.size(); ++j) r.a[j] += wt * c.a[j];
        for (size_t j = 0; j < r.b.size(); ++j) r.b[j] += wt * w->factor * c.b[j];
      }
    }
    blended.push_back(std::move(r));
    protos.push_back(parts[0].first);
  }
  // alpha = the largest rank; fold each target's alpha / r_t out of B (factor becomes that).
  int32_t alpha = 0;
  for (const Canon& c : blended) alpha = std::max(alpha, c.r);
  std::vector<LoraWeight> ws;
  for (size_t i = 0; i < blended.size(); ++i) {
    Canon& c = blended[i];
    const float fold = static_cast<float>(c.r) / static_cast<float>(alpha);
    if (fold != 1.0f)
      for (float& v : c.b) v *= fold;
    ws.push_back(from_canon(*protos[i], c));
  }
  const char* mname = mode == LoraBlendMode::kExact ? "exact" : mode == LoraBlendMode::kAverage ? "average" : "svd";
  return LoraAdapter::FromWeights(model, std::string("blend-") + mname, static_cast<float>(alpha), false,
                                  std::move(ws), out);
}

}  // namespace ember
