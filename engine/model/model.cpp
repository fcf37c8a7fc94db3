#include "engine/model/model.h"

#include "core/log.h"
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
    for (const GgufTensor& t : m->gguf_->tensors()) {
      m->n_params_ += t.n_elements;
      m->weight_bytes_ += t.nbytes;
    }
  }
  EMBER_LOG_INFO("%s: %s", m->gguf_->path().c_str(), m->config_.Summary().c_str());
  *out = std::move(m);
  return Status::Ok();
}

// A 2-D weight with ne = {cols, rows} whose type the kernels can multiply.
Status Model::Matrix(const std::string& name, int64_t cols, int64_t rows, kernels::MatView* out) {
  const GgufTensor* t = gguf_->FindTensor(name);
  const std::string where = gguf_->path() + ": tensor '" + name + "'";
  if (!t) return NotFound(where + " is missing");
  if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
    return BadFormat(where + " has shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                     (t->n_dims > 2 ? ", ..." : "") + "], expected [" + std::to_string(cols) + ", " +
                     std::to_string(rows) + "]");
  if (!kernels::supports(kernels::reference(), t->type) || !has_to_float(t->type))
    return Unsupported(where + " has type " + dtype_name(t->type) + ", which this build cannot compute with");
  out->type = t->type;
  out->data = t->data;
  out->rows = static_cast<size_t>(rows);
  out->cols = static_cast<size_t>(cols);
  out->row_stride = row_bytes(t->type, static_cast<uint64_t>(cols));
  return Status::Ok();
}

// A 1-D float vector of n elements (F32 used in place; F16/BF16 converted once).
Status Model::Vector(const std::string& name, int64_t n, bool required, const float** out) {
  const GgufTensor* t = gguf_->FindTensor(name);
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

Status Model::BindWeights() {
  ModelConfig& c = config_;
  const GgufTensor* emb = gguf_->FindTensor("token_embd.weight");
  if (!emb) return NotFound(gguf_->path() + ": tensor 'token_embd.weight' is missing");
  c.n_vocab = static_cast<int32_t>(emb->ne[1]);
  if (tokenizer_->n_vocab() > c.n_vocab)
    return BadFormat(gguf_->path() + ": the tokenizer has " + std::to_string(tokenizer_->n_vocab()) +
                     " tokens but token_embd.weight only " + std::to_string(c.n_vocab) + " rows");
  ModelWeights& w = weights_;
  EMBER_RETURN_IF_ERROR(Matrix("token_embd.weight", c.n_embd, c.n_vocab, &w.token_embd));
  w.layers.resize(c.n_layer);
  for (int32_t i = 0; i < c.n_layer; ++i) {
    LayerWeights& l = w.layers[i];
    const std::string b = "blk." + std::to_string(i) + ".";
    EMBER_RETURN_IF_ERROR(Vector(b + "attn_norm.weight", c.n_embd, true, &l.attn_norm));
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_q.weight", c.n_embd, c.q_dim(), &l.wq));
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_k.weight", c.n_embd, c.kv_dim(), &l.wk));
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_v.weight", c.n_embd, c.kv_dim_v(), &l.wv));
    EMBER_RETURN_IF_ERROR(Matrix(b + "attn_output.weight", c.n_head * c.head_dim_v, c.n_embd, &l.wo));
    EMBER_RETURN_IF_ERROR(Vector(b + "post_attention_norm.weight", c.n_embd, c.post_norms, &l.post_attn_norm));
    EMBER_RETURN_IF_ERROR(Vector(b + "ffn_norm.weight", c.n_embd, true, &l.ffn_norm));
    EMBER_RETURN_IF_ERROR(Matrix(b + "ffn_gate.weight", c.n_embd, c.n_ff, &l.gate));
    EMBER_RETURN_IF_ERROR(Matrix(b + "ffn_up.weight", c.n_embd, c.n_ff, &l.up));
    EMBER_RETURN_IF_ERROR(Matrix(b + "ffn_down.weight", c.n_ff, c.n_embd, &l.down));
    EMBER_RETURN_IF_ERROR(Vector(b + "post_ffw_norm.weight", c.n_embd, c.post_norms, &l.post_ffn_norm));
  }
  EMBER_RETURN_IF_ERROR(Vector("output_norm.weight", c.n_embd, true, &w.output_norm));
  if (gguf_->FindTensor("output.weight")) {
    EMBER_RETURN_IF_ERROR(Matrix("output.weight", c.n_embd, c.n_vocab, &w.output));
  } else {
    w.output = w.token_embd;
    w.tied_output = true;
  }
  return Status::Ok();
}

}  // namespace ember
