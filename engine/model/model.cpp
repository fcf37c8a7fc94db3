#include "engine/model/model.h"

#include <cmath>
#include <utility>

#include "core/log.h"
#include "engine/model/prefault_weights.h"
#include "quant/convert.h"

namespace ember {

Model::~Model() = default;

Status Model::Load(const std::string& path, const ModelParams& params, std::unique_ptr<Model>* out) {
  std::unique_ptr<GgufFile> g;
  EMBER_RETURN_IF_ERROR(GgufFile::Open(path, &g));
  return FromGguf(std::move(g), params, out);
}

Status Model::FromGguf(std::unique_ptr<GgufFile> gguf, const ModelParams& params,
                       std::unique_ptr<Model>* out) {
  std::unique_ptr<Model> m(new Model());
  m->gguf_ = std::move(gguf);
  m->params_ = params;
  if (params.vocab_only) {
    // The tokenizer first: what a vocab-only user needs, so its error comes first. As
    // llama.cpp's vocab_only, the architecture's hyperparameters must still parse and the
    // vocabulary size is the tokenizer's.
    EMBER_RETURN_IF_ERROR(Tokenizer::FromGguf(*m->gguf_, &m->tokenizer_));
    EMBER_RETURN_IF_ERROR(ModelConfig::FromGguf(*m->gguf_, &m->config_));
    m->config_.n_vocab = m->tokenizer_->n_vocab();
  } else {
    EMBER_RETURN_IF_ERROR(ModelConfig::FromGguf(*m->gguf_, &m->config_));
    EMBER_RETURN_IF_ERROR(Tokenizer::FromGguf(*m->gguf_, &m->tokenizer_));
    EMBER_RETURN_IF_ERROR(m->BindWeights());
    if (params.repack && !kernels::reference_requested_by_env())
      EMBER_RETURN_IF_ERROR(RepackWeights(kernels::best(), *m->gguf_, &m->weights_, &m->repacked_));
    PrefaultMatrices(*m->gguf_, m->weights_);
    for (const GgufTensor& t : m->gguf_->tensors()) {
      m->n_params_ += t.n_elements;
      m->weight_bytes_ += t.nbytes;
    }
  }
  EMBER_LOG_INFO("%s: %s", m->gguf_->path().c_str(), m->config_.Summary().c_str());
  *out = std::move(m);
  return Status::Ok();
}

uint64_t Model::resident_weight_bytes() const {
  return gguf_->file_size() - repacked_.released + repacked_.bytes;
}

const GgufTensor* Model::Use(const std::string& name) {
  const GgufTensor* t = gguf_->FindTensor(name);
  if (t) used_[static_cast<size_t>(t - gguf_->tensors().data())] = true;
  return t;
}

Status Model::Matrices(const std::string& name, int64_t cols, std::initializer_list<RowRange> parts) {
  int64_t rows = 0;
  for (const RowRange& p : parts) rows += p.rows;
  const GgufTensor* t = Use(name);
  const std::string where = gguf_->path() + ": tensor '" + name + "'";
  if (!t) return NotFound(where + " is missing");
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
    return BadFormat(where + " has shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                     (t->n_dims > 2 ? ", ..." : "") + "], expected [" + std::to_string(cols) + ", " +
                     std::to_string(rows) + "]");
  if (!kernels::supports(kernels::reference(), t->type) || !has_to_float(t->type))
    return Unsupported(where + " has type " + dtype_name(t->type) + ", which this build cannot compute with");
  const size_t stride = row_bytes(t->type, static_cast<uint64_t>(cols));
  size_t first_row = 0;
  for (const RowRange& p : parts) {  // rows are contiguous: a range is a pointer offset
    p.out->type = t->type;
    p.out->data = t->data + first_row * stride;
    p.out->rows = static_cast<size_t>(p.rows);
    p.out->cols = static_cast<size_t>(cols);
    p.out->row_stride = stride;
    first_row += static_cast<size_t>(p.rows);
  }
  return Status::Ok();
}

// A 1-D float vector of n elements (F32 used in place; F16/BF16 converted once).
Status Model::Vector(const std::string& name, int64_t n, bool required, const float** out) {
  const GgufTensor* t = Use(name);
  const std::string where = gguf_->path() + ": tensor '" + name + "'";
  if (!t) {
    if (required) return NotFound(where + " is missing");
    *out = nullptr;
    return Status::Ok();
  }
  if (t->n_elements != static_cast<uint64_t>(n) || t->ne[0] != n)
    return BadFormat(where + " has " + std::to_string(t->n_elements) + " elements, expected " + std::to_string(n));
  if (t->type == DType::F32) {
    *out = reinterpret_cast<const float*>(t->data);
    return Status::Ok();
  }
  std::vector<float> v(static_cast<size_t>(n));
  if (!to_float_row(t->type, t->data, v.data(), v.size()))
    return Unsupported(where + " has type " + dtype_name(t->type) + ", expected a float type");
  owned_vectors_.push_back(std::move(v));
  *out = owned_vectors_.back().data();
  return Status::Ok();
}

Status Model::BindLayer(int32_t il, LayerWeights* l) {
  const ModelConfig& c = config_;
  const std::string b = "blk." + std::to_string(il) + ".";
  EMBER_RETURN_IF_ERROR(Vector(b + "attn_norm.weight", c.n_embd, true, &l->attn_norm));
  if (c.fused_qkv) {
    EMBER_RETURN_IF_ERROR(Matrices(b + "attn_qkv.weight", c.n_embd,
                                   {{c.q_dim(), &l->wq}, {c.kv_dim(), &l->wk}, {c.kv_dim_v(), &l->wv}}));
  } else {
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_q.weight", c.n_embd, c.q_dim(), &l->wq));
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_k.weight", c.n_embd, c.kv_dim(), &l->wk));
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_v.weight", c.n_embd, c.kv_dim_v(), &l->wv));
  }
  if (c.qkv_bias) {
    EMBER_RETURN_IF_ERROR(Vector(b + "attn_q.bias", c.q_dim(), true, &l->bq));
    EMBER_RETURN_IF_ERROR(Vector(b + "attn_k.bias", c.kv_dim(), true, &l->bk));
    EMBER_RETURN_IF_ERROR(Vector(b + "attn_v.bias", c.kv_dim_v(), true, &l->bv));
  }
  if (c.qk_norm) {
    EMBER_RETURN_IF_ERROR(Vector(b + "attn_q_norm.weight", c.head_dim, true, &l->q_norm));
    EMBER_RETURN_IF_ERROR(Vector(b + "attn_k_norm.weight", c.head_dim, true, &l->k_norm));
  }
  EMBER_RETURN_IF_ERROR(Matrix(b + "attn_output.weight", c.n_head * c.head_dim_v, c.n_embd, &l->wo));
  if (c.post_norms)
    EMBER_RETURN_IF_ERROR(Vector(b + "post_attention_norm.weight", c.n_embd, true, &l->post_attn_norm));
  EMBER_RETURN_IF_ERROR(Vector(b + "ffn_norm.weight", c.n_embd, true, &l->ffn_norm));
  if (c.fused_gate_up) {
    EMBER_RETURN_IF_ERROR(Matrices(b + "ffn_up.weight", c.n_embd, {{c.n_ff, &l->gate}, {c.n_ff, &l->up}}));
  } else {
    EMBER_RETURN_IF_ERROR(Matrix(b + "ffn_gate.weight", c.n_embd, c.n_ff, &l->gate));
    EMBER_RETURN_IF_ERROR(Matrix(b + "ffn_up.weight", c.n_embd, c.n_ff, &l->up));
  }
  EMBER_RETURN_IF_ERROR(Matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, &l->down));
  if (c.post_norms)
    EMBER_RETURN_IF_ERROR(Vector(b + "post_ffw_norm.weight", c.n_embd, true, &l->post_ffn_norm));
  return Status::Ok();
}

// rope_freqs (llama) or LongRoPE's long/short pair (phi3): optional, positive and finite.
Status Model::BindRopeFactors() {
  const ModelConfig& c = config_;
  ModelWeights& w = weights_;
  const int64_t n = c.rope_dim / 2;
  if (c.may_have_rope_freqs) EMBER_RETURN_IF_ERROR(Vector("rope_freqs.weight", n, false, &w.rope_freqs));
  if (c.may_have_longrope) {
    EMBER_RETURN_IF_ERROR(Vector("rope_factors_long.weight", n, false, &w.rope_factors_long));
    EMBER_RETURN_IF_ERROR(Vector("rope_factors_short.weight", n, false, &w.rope_factors_short));
    if (!w.rope_factors_long != !w.rope_factors_short)
      return NotFound(gguf_->path() + ": tensor '" +
                      (w.rope_factors_long ? "rope_factors_short.weight" : "rope_factors_long.weight") +
                      "' is missing (LongRoPE needs both factor tensors)");
  }
  for (const auto& [name, f] : {std::pair{"rope_freqs.weight", w.rope_freqs},
                                std::pair{"rope_factors_long.weight", w.rope_factors_long},
                                std::pair{"rope_factors_short.weight", w.rope_factors_short}})
    for (int64_t i = 0; f && i < n; ++i)
      if (!(f[i] > 0) || !std::isfinite(f[i]))
        return BadFormat(gguf_->path() + ": tensor '" + name + "' element " + std::to_string(i) + " is " +
                         std::to_string(f[i]) + ", expected a positive frequency divisor");
  return Status::Ok();
}

const float* Model::rope_factors(int32_t n_ctx) const {
  const ModelWeights& w = weights_;
  if (w.rope_freqs) return w.rope_freqs;
  return n_ctx > config_.rope_ctx_orig ? w.rope_factors_long : w.rope_factors_short;
}

Status Model::CheckAllTensorsUsed() const {
  const std::vector<GgufTensor>& ts = gguf_->tensors();
  size_t n_unused = 0, first = ts.size();
  for (size_t i = 0; i < ts.size(); ++i)
    if (!used_[i] && n_unused++ == 0) first = i;
  if (n_unused == 0) return Status::Ok();
  return BadFormat(gguf_->path() + ": tensor '" + ts[first].name + "' is not used by architecture '" +
                   config_.arch + "'" +
                   (n_unused > 1 ? " (and " + std::to_string(n_unused - 1) + " more unused tensors)" : ""));
}

Status Model::BindWeights() {
  ModelConfig& c = config_;
  used_.assign(gguf_->tensors().size(), false);
  const GgufTensor* emb = gguf_->FindTensor("token_embd.weight");
  if (gguf_->tensors().empty())  // what a user who passes a tokenizer file to `ember run` should read
    return NotFound(gguf_->path() + ": the file has no tensors (a vocabulary-only GGUF): it can tokenize and "
                    "render templates, not generate");
  if (!emb) return NotFound(gguf_->path() + ": tensor 'token_embd.weight' is missing");
  c.n_vocab = static_cast<int32_t>(emb->ne[1]);
  if (tokenizer_->n_vocab() > c.n_vocab)
    return BadFormat(gguf_->path() + ": the tokenizer has " + std::to_string(tokenizer_->n_vocab()) +
                     " tokens but token_embd.weight only " + std::to_string(c.n_vocab) + " rows");
  ModelWeights& w = weights_;
  EMBER_RETURN_IF_ERROR(Matrix("token_embd.weight", c.n_embd, c.n_vocab, &w.token_embd));
  w.layers.resize(c.n_layer);
  for (int32_t i = 0; i < c.n_layer; ++i) EMBER_RETURN_IF_ERROR(BindLayer(i, &w.layers[i]));
  EMBER_RETURN_IF_ERROR(Vector("output_norm.weight", c.n_embd, true, &w.output_norm));
  if (gguf_->FindTensor("output.weight")) {
    EMBER_RETURN_IF_ERROR(Matrix("output.weight", c.n_embd, c.n_vocab, &w.output));
  } else {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  if (c.may_have_output_bias) EMBER_RETURN_IF_ERROR(Vector("output.bias", c.n_vocab, false, &w.output_bias));
  EMBER_RETURN_IF_ERROR(BindRopeFactors());
  return CheckAllTensorsUsed();
}

}  // namespace ember
