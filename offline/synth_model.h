// `ember synth`: a GGUF model with the exact tensor shapes of a real model, random
// weights and a valid SentencePiece vocabulary of the right size, so that benchmarks
// measure real-sized matmuls, embeddings and vocabularies without downloading weights.
//
// Weights: every matrix W [rows][fan_in] ~ N(0, 1/fan_in) (so activations keep their
// scale through the layers), drawn as an Irwin-Hall(4) approximation of the normal
// (the sum of four 16-bit uniforms of one xoshiro256** draw, standardized: mean 0,
// variance 1, tails cut at +-3.46); norm weights 1. Row r of tensor t comes from its own
// generator seeded by (seed, t, r), so rows are produced in parallel and the
// bytes depend only on (preset, type, seed), never on the thread count. Rows are made
// and converted in chunks, streaming to the file: the F32 model is never in memory.
//
// Vocabulary (tokenizer.ggml.model "llama", SentencePiece BPE): <unk> (0, unknown),
// <s> (1, control), </s> (2, control), <0x00>..<0xFF> (3..258, byte), then "▁" and
// the synthetic pieces "▁a", "a", "▁b", "b", ..., "▁z", "z", "▁aa", "aa", "▁ab", ...
// (bijective base-26 words, with and without the word-start mark; every piece's prefix
// is a piece too, so BPE can build each one), scores -k for the k-th. bos 1, eos 2.
//
// With a vocabulary file (SynthOptions::vocab_path, `ember synth --vocab FILE.gguf`): every
// tokenizer.* key of that GGUF (tokens, token_type, scores, merges, pre, the special ids,
// add_bos_token, chat_template, ...) replaces the synthetic vocabulary, in that file's order,
// and n_vocab (token_embd, output, vocab_size) is its token count: a model with a real
// vocabulary and chat template, for tests. ember.synth.vocab records the file's name (not
// its path, so the bytes do not depend on where it lies).
//
// Tensors per architecture as llama.cpp b10256 loads them: q/k/v biases (qwen2), QK-norm
// (qwen3, gemma3), post-norms (gemma2, gemma3), fused attn_qkv and gate+up ffn_up (phi3),
// rope_freqs computed as the Llama 3.1 converter does (llama3 presets). Biases are random
// like weights; norms are 1.
//
// Type choice per tensor: the rules of `ember quantize` (offline/quantize_model.h).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "offline/quantize_model.h"

namespace ember {

struct SynthPreset {
  const char* name;
  const char* arch;         // general.architecture; its tensor layout comes from the arch
  const char* description;  // shapes, and what differs from the real model
  int32_t n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx;
  float rope_base, norm_eps;
  bool tied;  // no output.weight: the output reuses token_embd
  int32_t sliding_window = 0;         // gemma2/gemma3 local layers
  float attn_softcap = 0, final_softcap = 0;  // gemma2
  float llama3_rope_factor = 0;       // > 0: a rope_freqs tensor (Llama 3.1/3.2 scaling)
};
std::span<const SynthPreset> SynthPresets();
const SynthPreset* FindSynthPreset(std::string_view name);  // nullptr when unknown

struct SynthOptions {
  std::string preset = "tiny";
  QuantTarget target = QuantTarget::kF32;
  uint64_t seed = 0;
  std::string vocab_path;  // "": the synthetic vocabulary; else a GGUF whose tokenizer.* keys to copy
  int n_threads = 0;  // 0: every CPU we may run on
  ProgressFn progress;
};
Status SynthModel(const std::string& out_path, const SynthOptions& options);

// The 'llama3' rope-scaling divisors of a head of head_dim dims (head_dim/2 values), as
// Llama 3.1's converter computes them into rope_freqs (low_freq_factor 1, high 4,
// original context 8192).
std::vector<float> Llama3RopeFreqs(int32_t head_dim, float rope_base, float factor);

// The vocabulary described above, n_vocab >= 260 entries.
void SynthVocab(int32_t n_vocab, std::vector<std::string>* tokens, std::vector<float>* scores,
                std::vector<int32_t>* types);

}  // namespace ember
