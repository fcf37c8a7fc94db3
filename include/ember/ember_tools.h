/* Ember offline tools: writing model files. The C API of libember-tools (the offline
 * library: quantize, synth, LoRA blend/merge/save; Eigen lives here, never in the
 * runtime library libember). Link both: libember-tools depends on libember.
 * Conventions (status codes, ember_last_error, no exceptions crossing the API) are
 * ember.h's.
 */
#ifndef EMBER_EMBER_TOOLS_H
#define EMBER_EMBER_TOOLS_H

#include "ember/ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- model files: quantize, synthesize -----------------------------------------
 *
 * ember_quantize_file converts a GGUF model with F32/F16/BF16 weights to another
 * weight type, choosing the type of each tensor as llama.cpp's llama-quantize does by
 * default, so the file holds the tensor types llama.cpp's would (norms stay F32, the
 * output matrix Q6_K, more bits for attn_v/ffn_down in some layers, 32-block fallbacks
 * for rows that are not a multiple of 256, ...; rules in offline/quant_rules.h and
 * docs/FORMATS.md) and, for every type, the same bytes. All metadata is kept;
 * general.file_type and general.quantization_version are set.
 * ember_synth_file writes a model with the exact shapes of a real one, random weights
 * and a valid SentencePiece vocabulary, for benchmarks and tests.
 * Both stream the tensors (memory stays at a few MiB of rows, not a model), write a
 * temporary file next to the output and rename it into place: a failed or cancelled
 * call leaves no file behind.
 *
 *   ember_quantize_file("model-f16.gguf", "model-q4_k_m.gguf", "q4_k_m", NULL);
 */

/* Step i (1-based) of n is starting on `name` (a tensor), stored as `type` ("q4_k");
 * `note` is "" or why a fallback type was chosen. Return non-zero to cancel: the call
 * then returns EMBER_ERR_CANCELLED. */
typedef int (*ember_progress_callback)(int32_t i, int32_t n, const char* name, const char* type,
                                       const char* note, void* user);

typedef struct ember_quantize_params {
  int32_t n_threads;                /* 0: the performance cores; the output does not depend on it */
  ember_progress_callback progress; /* NULL: none */
  void* user;
} ember_quantize_params;

EMBER_API ember_quantize_params ember_quantize_default_params(void);
/* The type names (llama.cpp's file types), for i = 0, 1, ... until NULL: "q8_0",
 * "q6_k", "q5_k_m", "q5_1", "q5_0", "q4_k_m", "q4_k_s", "q4_1", "q4_0", "iq4_nl",
 * "iq4_xs", "q3_k_m", "q2_k", "f16", "bf16", "f32". */
EMBER_API const char* ember_quantize_type_name(int32_t i);
/* type: one of those names (any case). params may be NULL (defaults). Errors name the
 * file and tensor: INVALID_ARGUMENT (unknown type; a row length the type cannot hold
 * with no fallback, e.g. q8_0 on rows that are not a multiple of 32; output path =
 * input), UNSUPPORTED (quantized input), CANCELLED, IO, BAD_FORMAT. */
EMBER_API ember_status ember_quantize_file(const char* in_path, const char* out_path, const char* type,
                                           const ember_quantize_params* params);

typedef struct ember_synth_params {
  const char* preset;               /* ember_synth_preset_name(); default "tiny" */
  const char* type;                 /* as for ember_quantize_file; default "f32" */
  uint64_t seed;                    /* same seed, preset and type: same bytes */
  int32_t n_threads;                /* 0: the performance cores; the output does not depend on it */
  ember_progress_callback progress; /* NULL: none */
  void* user;
  const char* vocab;                /* NULL (default): a synthetic SentencePiece vocabulary of the
                                       preset's size; else a GGUF (e.g. a vocab-only file) whose
                                       tokenizer.* keys (tokens, merges, ids, chat_template, ...)
                                       are copied: n_vocab becomes its token count. Same bytes
                                       for the same inputs. */
} ember_synth_params;

EMBER_API ember_synth_params ember_synth_default_params(void);
/* Presets, for i = 0, 1, ... until NULL ("tinyllama-1.1b", "llama-3.2-1b", ...), and a
 * one-line description of each (shapes, and what differs from the real model). */
EMBER_API const char* ember_synth_preset_name(int32_t i);
EMBER_API const char* ember_synth_preset_description(int32_t i);
/* Writes the preset's model to out_path. params may be NULL (defaults). */
EMBER_API ember_status ember_synth_file(const char* out_path, const ember_synth_params* params);

/* ---- LoRA adapters, offline ------------------------------------------------------ */

/* Writes the adapter as a GGUF adapter file, with its task examples. */
EMBER_API ember_status ember_lora_save(const ember_lora* lora, const char* path);

/* Offline tools (`ember lora blend|merge`). Blend modes (offline/lora_tools.h):
 * EXACT concatenates ranks (ΔW = Σ w_i·s_i·B_i·A_i exactly); AVERAGE is Crayon's
 * A = Σ w_i A_i, B = Σ w_i s_i B_i at equal rank; SVD keeps the best rank-`rank`
 * approximation of the exact ΔW. Writes a GGUF adapter (F32, applied at scale 1). */
typedef enum ember_lora_blend_mode {
  EMBER_LORA_BLEND_EXACT = 0,
  EMBER_LORA_BLEND_AVERAGE = 1,
  EMBER_LORA_BLEND_SVD = 2
} ember_lora_blend_mode;
EMBER_API ember_status ember_lora_blend(const ember_model* model, const ember_lora* const* loras,
                                        const float* weights, size_t n, int mode, int32_t rank,
                                        const char* out_path);
/* Writes the model with Σ scale_i·ΔW_i added to its weights. type: NULL keeps each
 * tensor's type (adapted quantized tensors are re-quantized to it), else "f32", "f16",
 * "bf16", "q8_0", "q4_0", "q4_k" or "q6_k" for every matrix. */
EMBER_API ember_status ember_lora_merge(const ember_model* model, const ember_lora* const* loras,
                                        const float* scales, size_t n, const char* type,
                                        const char* out_path);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_EMBER_TOOLS_H */
