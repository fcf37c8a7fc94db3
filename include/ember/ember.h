/* Ember: an inference engine for small transformer language models on edge devices.
 *
 * The C API. Opaque handles, status codes with messages, no exceptions and no
 * exit() crossing this boundary. Every function that can fail returns an
 * ember_status; on failure, ember_last_error() gives a one-line message naming
 * what was wrong (file, key, tensor, argument), valid until the next failing
 * call on the same thread.
 *
 * Thread safety: a model may be shared by several contexts (read-only); a context
 * is used by one thread at a time.
 *
 * Typical use:
 *   ember_model* m; ember_context* c;
 *   if (ember_model_load("model.gguf", NULL, &m) != EMBER_OK) puts(ember_last_error());
 *   ember_context_create(m, NULL, &c);
 *   ember_generate_params gp = ember_generate_default_params();
 *   gp.on_token = print_piece;
 *   ember_generate(c, "Once upon a time", &gp, NULL);
 *   ember_context_free(c); ember_model_free(m);
 */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EMBER_API __attribute__((visibility("default")))
#else
#define EMBER_API
#endif

typedef struct ember_model ember_model;
typedef struct ember_context ember_context;

typedef enum ember_status {
  EMBER_OK = 0,
  EMBER_ERR_INVALID_ARGUMENT = 1, /* a parameter is unusable (NULL handle, bad value) */
  EMBER_ERR_NOT_FOUND = 2,        /* file, key or tensor absent */
  EMBER_ERR_IO = 3,               /* open/read/mmap failed */
  EMBER_ERR_BAD_FORMAT = 4,       /* malformed file */
  EMBER_ERR_UNSUPPORTED = 5,      /* well-formed but not supported (architecture, type) */
  EMBER_ERR_OUT_OF_RANGE = 6,     /* e.g. prompt longer than the context, buffer too small */
  EMBER_ERR_OUT_OF_MEMORY = 7,
  EMBER_ERR_INTERNAL = 8,
  EMBER_ERR_CANCELLED = 9         /* a callback asked to stop */
} ember_status;

EMBER_API const char* ember_version(void);
EMBER_API const char* ember_status_name(ember_status status);
/* Message of the last failed call on this thread ("" if none). */
EMBER_API const char* ember_last_error(void);

/* Log messages of the library; default: warnings and errors to stderr
 * (EMBER_LOG=debug|info|warn|error|none overrides). level: 0 debug .. 3 error. */
typedef void (*ember_log_callback)(int level, const char* message, void* user);
EMBER_API void ember_set_log_callback(ember_log_callback cb, void* user); /* NULL: stderr */
EMBER_API void ember_set_log_level(int level);                           /* 4: silent */

/* ---- model ------------------------------------------------------------------ */

typedef struct ember_model_params {
  int reference_kernels; /* 1: every kernel is the scalar reference (also EMBER_REFERENCE=1) */
} ember_model_params;

EMBER_API ember_model_params ember_model_default_params(void);
/* params may be NULL (defaults). */
EMBER_API ember_status ember_model_load(const char* path, const ember_model_params* params,
                                        ember_model** out);
EMBER_API void ember_model_free(ember_model* model);

typedef struct ember_model_info {
  const char* architecture; /* "llama", "gemma", ... (owned by the model) */
  const char* name;         /* general.name or "" */
  int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
  int32_t bos_id, eos_id;
  uint64_t n_params;     /* number of weights */
  uint64_t weight_bytes; /* bytes of tensor data mapped */
  const char* kernels;   /* ISA of the kernels in use: "avx2", "neon", "scalar", ... */
} ember_model_info;

EMBER_API ember_status ember_model_get_info(const ember_model* model, ember_model_info* out);
/* A string metadata value of the model file (e.g. "ember.prompt_template"), or NULL
 * when absent or not a string. Owned by the model. */
EMBER_API const char* ember_model_meta_string(const ember_model* model, const char* key);

/* ---- tokenizer ---------------------------------------------------------------- */

/* Text (len bytes, need not be NUL-terminated or valid UTF-8) -> ids. add_bos: -1 = the
 * model's default, 0 = no, 1 = yes. parse_special: control-token texts like "<eos>"
 * become single tokens. Writes at most cap ids; *n_out receives the number of ids
 * the text needs; EMBER_ERR_OUT_OF_RANGE when cap is smaller. */
EMBER_API ember_status ember_tokenize(const ember_model* model, const char* text, size_t len,
                                      int add_bos, int parse_special, int32_t* ids, size_t cap,
                                      size_t* n_out);
/* The bytes of one token as it appears in output text (control tokens only when
 * render_special). Same buffer convention as ember_tokenize (no NUL added). */
EMBER_API ember_status ember_token_to_text(const ember_model* model, int32_t id,
                                           int render_special, char* buf, size_t cap,
                                           size_t* n_out);
/* ids -> text; drops the leading space a SentencePiece dummy prefix added. */
EMBER_API ember_status ember_detokenize(const ember_model* model, const int32_t* ids, size_t n,
                                        int render_special, char* buf, size_t cap,
                                        size_t* n_out);
/* The raw vocabulary piece of id ("▁Hello", "<0x0A>"), owned by the model; NULL if out of range. */
EMBER_API const char* ember_token_piece(const ember_model* model, int32_t id);
/* Id of a piece, or -1. */
EMBER_API int32_t ember_piece_to_token(const ember_model* model, const char* piece);

/* ---- context: KV cache + scratch, allocated once ------------------------------ */

typedef struct ember_context_params {
  int32_t n_ctx;        /* tokens of KV cache; 0 = the model's training context */
  int32_t n_batch;      /* max tokens per forward pass; 0 = min(n_ctx, 512) */
  int32_t n_threads;    /* 0 = all cores */
  int logits_all;       /* 1: keep logits for every token of an eval (n <= n_batch) */
  int reference_kernels;/* 1: scalar reference kernels for this context */
} ember_context_params;

EMBER_API ember_context_params ember_context_default_params(void);
EMBER_API ember_status ember_context_create(ember_model* model, const ember_context_params* params,
                                            ember_context** out);
EMBER_API void ember_context_free(ember_context* ctx);
/* Bytes the context allocated (KV cache + scratch). */
EMBER_API uint64_t ember_context_bytes(const ember_context* ctx);
EMBER_API int32_t ember_context_n_ctx(const ember_context* ctx);
/* Tokens currently in the KV cache. */
EMBER_API int32_t ember_n_past(const ember_context* ctx);
/* Forget all tokens (keeps allocations). */
EMBER_API void ember_context_reset(ember_context* ctx);

/* Appends n tokens at position n_past (batched, in chunks of n_batch) and computes
 * logits: for every token when logits_all (then n <= n_batch), else for the last. */
EMBER_API ember_status ember_eval(ember_context* ctx, const int32_t* ids, size_t n);
/* Logits [n_vocab] of token i of the last eval (i = -1: the last token); NULL when not
 * kept. Valid until the next eval. */
EMBER_API const float* ember_get_logits(const ember_context* ctx, int32_t i);

/* ---- generation ---------------------------------------------------------------- */

typedef struct ember_sampling_params {
  float temperature;       /* <= 0: greedy */
  int32_t top_k;           /* <= 0: off */
  float top_p;             /* >= 1: off */
  float min_p;             /* <= 0: off */
  float repeat_penalty;    /* 1: off */
  int32_t repeat_last_n;   /* window of the penalties */
  float frequency_penalty; /* 0: off */
  float presence_penalty;  /* 0: off */
  uint64_t seed;
} ember_sampling_params;

/* Called with each generated token and the text it adds to the output (may be empty,
 * e.g. while a possible stop string is held back). Return non-zero to stop: generation
 * then ends normally (EMBER_OK) with stop_reason EMBER_STOP_CALLBACK. */
typedef int (*ember_token_callback)(int32_t token, const char* text, size_t len, void* user);

typedef enum ember_stop_reason {
  EMBER_STOP_NONE = 0,
  EMBER_STOP_EOS = 1,        /* end-of-sequence token */
  EMBER_STOP_TOKEN = 2,      /* one of stop_ids */
  EMBER_STOP_STRING = 3,     /* one of stop_strings (not included in the output) */
  EMBER_STOP_MAX_TOKENS = 4,
  EMBER_STOP_CONTEXT_FULL = 5,
  EMBER_STOP_CALLBACK = 6
} ember_stop_reason;

typedef struct ember_generate_params {
  ember_sampling_params sampling;
  int32_t max_tokens;              /* <= 0: until a stop or the context is full */
  const int32_t* stop_ids;         /* generation stops after sampling one of these */
  size_t n_stop_ids;
  const char* const* stop_strings; /* generation stops when the output contains one */
  size_t n_stop_strings;
  int stop_at_eos;                 /* default 1 */
  int render_special;              /* control tokens appear in the text; default 0 */
  ember_token_callback on_token;
  void* user;
} ember_generate_params;

typedef struct ember_generate_result {
  int32_t n_prompt;       /* prompt tokens evaluated */
  int32_t n_generated;    /* tokens sampled */
  ember_stop_reason stop_reason;
  double prefill_ms;      /* prompt evaluation */
  double decode_ms;       /* all generated tokens */
  double ttft_ms;         /* start to first generated token */
} ember_generate_result;

EMBER_API ember_sampling_params ember_sampling_default_params(void);
EMBER_API ember_generate_params ember_generate_default_params(void);
/* Resets the context, tokenizes prompt (model's BOS rule, special tokens parsed),
 * evaluates it and generates. A prompt longer than the context is
 * EMBER_ERR_OUT_OF_RANGE. result may be NULL. */
EMBER_API ember_status ember_generate(ember_context* ctx, const char* prompt,
                                      const ember_generate_params* params,
                                      ember_generate_result* result);
/* Same from token ids (used as given, no BOS added). */
EMBER_API ember_status ember_generate_tokens(ember_context* ctx, const int32_t* prompt, size_t n,
                                             const ember_generate_params* params,
                                             ember_generate_result* result);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_EMBER_H */
