/* Ember: an inference engine for small transformer language models on edge devices.
 *
 * The C API. Opaque handles, status codes with messages, no exceptions and no
 * exit() crossing this boundary. Every function that can fail returns an
 * ember_status; on failure, ember_last_error() gives a one-line message naming
 * what was wrong (file, key, tensor, argument), valid until the next failing
 * call on the same thread.
 *
 * Thread safety: a model may be shared by several contexts (read-only); a context
 * is used by one thread at a time (docs/EMBEDDING.md has the details).
 *
 * This is the runtime library (libember: load, tokenize, context, eval, generate,
 * sample, LoRA apply, function calls). Writing model files (quantize, synth, LoRA
 * blend/merge/save) is the offline library's: include/ember/ember_tools.h, libember-tools.
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
  int vocab_only;        /* 1: load the metadata and the tokenizer only, no weights (a GGUF
                          * without tensors is fine); ember_context_create refuses such a
                          * model, n_params and weight_bytes are 0. Default 0. */
  int no_repack;         /* 1: use every weight in place in the mapped file. Default 0: the
                          * matrices the CPU's kernels read faster row-interleaved (Q4_0, Q8_0
                          * on x86-64) are copied once into that layout at load and their
                          * mapped pages released (same resident memory, faster prefill). */
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
  const char* kernels;   /* the kernel table contexts use by default: "avx2", "neon", ...,
                          * "scalar" under EMBER_REFERENCE=1 (ember_context_params decides) */
  uint64_t repacked_bytes; /* weights copied row-interleaved at load (0: none were, e.g.
                          * no_repack or no type the kernels repack) */
  const char* weight_layout; /* "repacked" or "in place" */
} ember_model_info;

EMBER_API ember_status ember_model_get_info(const ember_model* model, ember_model_info* out);
/* A string metadata value of the model file (e.g. "ember.prompt_template"), or NULL
 * when absent or not a string. Owned by the model. */
EMBER_API const char* ember_model_meta_string(const ember_model* model, const char* key);

/* ---- tokenizer ---------------------------------------------------------------- */

/* Text (len bytes, need not be NUL-terminated or valid UTF-8) -> ids. add_bos: -1 = the
 * model's default, 0 = no, 1 = yes. parse_special: control-token texts like "<eos>"
 * become single tokens. Writes at most cap ids; *n_out receives the number of ids
 * the text needs; EMBER_ERR_OUT_OF_RANGE when cap is smaller. n_out is required
 * (EMBER_ERR_INVALID_ARGUMENT when NULL); ids may be NULL when cap is 0 (a size query).
 * Every function that says "buffer convention as ember_tokenize" follows these rules. */
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

/* ---- chat ----------------------------------------------------------------------
 *
 * Chat templates turn a conversation into the prompt text a model was trained on. The
 * model's own template (GGUF key tokenizer.chat_template, Jinja) is rendered as Hugging
 * Face transformers renders it (docs/CHAT-TEMPLATES.md: the supported Jinja subset, caps
 * and errors); built-in templates serve files that carry none. */

typedef struct ember_chat_message { const char* role; const char* content; } ember_chat_message;
/* Renders messages with a chat template. tmpl: NULL = the model's own tokenizer.chat_template
 * (EMBER_ERR_NOT_FOUND when the file has none); a built-in name (chatml, llama2, llama3, gemma,
 * phi3, zephyr); anything else is Jinja source text. bos_token/eos_token/... come from the model's
 * vocabulary. Same buffer convention as ember_tokenize (no NUL added, *n_out = bytes needed).
 * Errors: EMBER_ERR_BAD_FORMAT for a template syntax error ("chat template: line L, column C:
 * ..."), EMBER_ERR_UNSUPPORTED for a construct the interpreter lacks (named, with its line),
 * EMBER_ERR_INVALID_ARGUMENT for a failure while rendering, raise_exception(msg) included
 * ("chat template: msg"), EMBER_ERR_OUT_OF_RANGE past the interpreter's caps or for a small buf. */
EMBER_API ember_status ember_chat_apply_template(const ember_model* model, const char* tmpl,
    const ember_chat_message* messages, size_t n, int add_generation_prompt,
    char* buf, size_t cap, size_t* n_out);
/* The tokens that end an assistant turn: the vocabulary's eos and eot ids (tokenizer.ggml.eos_token_id,
 * tokenizer.ggml.eot_token_id) plus the control/user-defined token the template writes right after an
 * assistant message's content (found by rendering [user "A", assistant "B"] and tokenizing what follows
 * "B" with special parsing on). Sorted, without duplicates. tmpl as above. A template that cannot
 * render that conversation adds no token (the vocabulary's ids remain). Buffer convention as
 * ember_tokenize. */
EMBER_API ember_status ember_chat_end_of_turn_tokens(const ember_model* model, const char* tmpl,
    int32_t* ids, size_t cap, size_t* n_out);

/* ---- context: KV cache + scratch, allocated once ------------------------------ */

/* How the KV cache stores keys and values (each separately). The values are fixed (the
 * ABI); F16, the default, is 0 so that zero-initialized params get it. Per element: F32 4
 * bytes; F16 2 (relative rounding 2^-11); Q8_0 34 bytes per 32 (an fp16 scale per block
 * and int8 codes: rounding up to amax/254 of the block; needs a head size that is a
 * multiple of 32). */
typedef enum ember_cache_type {
  EMBER_CACHE_F16 = 0,
  EMBER_CACHE_F32 = 1,
  EMBER_CACHE_Q8_0 = 2
} ember_cache_type;

/* "f32", "f16", "q8_0" (as llama.cpp's --cache-type-k spells them); NULL for a value that
 * is not a cache type. */
EMBER_API const char* ember_cache_type_name(ember_cache_type type);
/* The type of a name as ember_cache_type_name spells it; EMBER_ERR_INVALID_ARGUMENT,
 * naming it and listing the supported types, for any other name (e.g. llama.cpp's q4_0). */
EMBER_API ember_status ember_cache_type_from_name(const char* name, ember_cache_type* out);

typedef struct ember_context_params {
  int32_t n_ctx;        /* tokens of KV cache; 0 = the training context, at most 4096 */
  int32_t n_batch;      /* max tokens per forward pass; 0 = min(n_ctx, 512) */
  int32_t n_threads;    /* 0 = the performance cores (big.LITTLE: the faster tiers; see docs/API.md) */
  int logits_all;       /* 1: keep logits for every token of an eval (n <= n_batch) */
  int reference_kernels;/* 1: scalar reference kernels for this context (default: EMBER_REFERENCE=1) */
  ember_cache_type cache_type_k; /* keys in the KV cache; default (0) EMBER_CACHE_F16 */
  ember_cache_type cache_type_v; /* values; default (0) EMBER_CACHE_F16 */
  int swa_full;         /* 1: sliding-window layers (Gemma 2/3) keep all n_ctx positions instead
                         * of a ring of window + n_batch (same results, more memory; llama.cpp's
                         * --swa-full). Default 0. */
} ember_context_params;

EMBER_API ember_context_params ember_context_default_params(void);
/* params may be NULL (defaults). EMBER_ERR_OUT_OF_MEMORY, with the bytes needed and available
 * in the message, when the weights and the context's KV cache exceed the system's available
 * memory (MemAvailable) or the allocation fails. EMBER_ERR_INVALID_ARGUMENT, naming it, for a
 * cache type that is not one of ember_cache_type or that the model's heads cannot hold (q8_0
 * with a head size that is not a multiple of 32). */
EMBER_API ember_status ember_context_create(ember_model* model, const ember_context_params* params,
                                            ember_context** out);
EMBER_API void ember_context_free(ember_context* ctx);
/* Bytes the context allocated (KV cache + scratch). */
EMBER_API uint64_t ember_context_bytes(const ember_context* ctx);

/* The memory a context plans for, fixed when it is created: the peak memory of
 * filling it is about total_bytes (the test suite checks within 10 % on its models). */
typedef struct ember_memory_plan {
  uint64_t weights_bytes; /* the model file, mapped read-only: tensor data and the metadata
                             (vocabulary) before it, less the pages of weights repacked at
                             load, plus their repacked copies. Resident once read; shared by
                             every context of the model, so counted once per process. */
  uint64_t kv_bytes;      /* KV cache: per layer, cells x n_head_kv x (a K row + a V row) in the
                             cache types (cells: n_ctx, or window + n_batch for a sliding-window
                             layer's ring, at most n_ctx) */
  uint64_t scratch_bytes; /* activations of one n_batch batch, logits, rotary tables, quantized
                             activations: everything else the context allocates */
  uint64_t total_bytes;   /* weights + KV + scratch */
  uint64_t kv_bytes_per_token; /* what one more position of n_ctx adds to kv_bytes: a K and
                             a V row per KV head of every layer that is not a ring */
} ember_memory_plan;
/* Not in the plan: the model's heap, mostly the tokenizer's tables (about 270 bytes per
 * vocabulary entry: 0.6 MiB for 2k entries, 8.5 MiB for Llama 2's 32k), LoRA adapters
 * (their A and B matrices, n_batch rows of scratch), thread stacks and code pages. */
EMBER_API ember_status ember_context_memory(const ember_context* ctx, ember_memory_plan* out);
EMBER_API int32_t ember_context_n_ctx(const ember_context* ctx);
/* Tokens currently in the KV cache. */
EMBER_API int32_t ember_n_past(const ember_context* ctx);
/* The ids of the tokens in the KV cache, position by position (ember_n_past of them).
 * Buffer convention of ember_tokenize. */
EMBER_API ember_status ember_context_tokens(const ember_context* ctx, int32_t* ids, size_t cap, size_t* n_out);
/* Forget all tokens (keeps allocations). */
EMBER_API void ember_context_reset(ember_context* ctx);
/* Drops the KV cache after the first n_past tokens (0 <= n_past <= ember_n_past, else
 * EMBER_ERR_INVALID_ARGUMENT): a conversation that changed after token n_past is
 * re-evaluated from there. The logits of the last eval are dropped with them. */
EMBER_API ember_status ember_context_truncate(ember_context* ctx, int32_t n_past);

/* Saved state (docs/FORMATS.md, "Context state"): the tokens the context holds, their
 * keys and values in the cache's types, and the last token's logits, so that another
 * process can go on from there (ember_generate with cache_prompt then evaluates only what
 * follows the saved tokens; ember_get_logits works right after a load). Nothing of the
 * sampler is saved: its generator is seeded from ember_sampling_params.seed at each call.
 * Save writes a temporary file beside path and renames it over path. Load refuses, with
 * one line naming the difference, a file from another model (EMBER_ERR_INVALID_ARGUMENT;
 * also another cache type, n_ctx, or n_batch where it sizes a sliding-window ring), a
 * truncated or corrupt file (EMBER_ERR_BAD_FORMAT), a missing one (EMBER_ERR_NOT_FOUND);
 * on any failure the context is reset (n_past 0). The file records no LoRA adapter: load it
 * into a context with the adapters it was saved with. A context that made a context shift
 * is not saved (EMBER_ERR_INVALID_ARGUMENT): its rows are no longer what its tokens give. */
EMBER_API ember_status ember_context_save(const ember_context* ctx, const char* path);
EMBER_API ember_status ember_context_load(ember_context* ctx, const char* path);

/* Appends n tokens at position n_past (batched, in chunks of n_batch) and computes
 * logits: for every token when logits_all (then n <= n_batch), else for the last. */
EMBER_API ember_status ember_eval(ember_context* ctx, const int32_t* ids, size_t n);
/* Evaluates a whole prompt (positions 0..n-1) re-using the tokens the context holds that
 * it starts with: keeps the longest common prefix (at most n - 1 tokens, so the last
 * prompt token is evaluated and its logits exist) and evaluates the rest; resets first
 * when the cache cannot be cut there. The logits are the bits of ember_context_reset +
 * ember_eval(ids, n). *n_reused (may be NULL): the tokens kept. Errors as ember_eval,
 * checked before anything changes. */
EMBER_API ember_status ember_eval_prompt(ember_context* ctx, const int32_t* ids, size_t n, int32_t* n_reused);
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
 * e.g. while a possible stop string or an incomplete UTF-8 character is held back: text
 * ends on a character boundary, a character split over several tokens comes with its
 * last byte; bytes that can never become valid UTF-8 pass as they are, and whatever is
 * held at the end comes in one last call). Return non-zero to stop: generation then ends
 * normally (EMBER_OK) with stop_reason EMBER_STOP_CALLBACK. */
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
  int cache_prompt;                /* 1 (default): ember_generate(_tokens) keeps the tokens the
                                    * context holds that the prompt starts with and evaluates
                                    * only the rest (as llama.cpp server's cache_prompt; the
                                    * logits are the bits of a full evaluation); 0: reset and
                                    * evaluate the whole prompt. ember_generate_continue always
                                    * continues. */
  ember_token_callback on_token;
  void* user;
  int context_shift;               /* 1: a full context forgets half of the tokens after the first
                                    * n_keep and generation goes on (llama.cpp's --context-shift);
                                    * 0 (default): it stops with EMBER_STOP_CONTEXT_FULL */
  int32_t n_keep;                  /* tokens kept at a shift; -1: the whole prompt (default 0) */
} ember_generate_params;

typedef struct ember_generate_result {
  int32_t n_prompt;       /* prompt tokens */
  int32_t n_prompt_reused;/* of them, taken from the cache (cache_prompt): n_prompt -
                           * n_prompt_reused were evaluated */
  int32_t n_generated;    /* tokens sampled */
  ember_stop_reason stop_reason;
  double prefill_ms;      /* prompt evaluation */
  double decode_ms;       /* all generated tokens */
  double ttft_ms;         /* start to first generated token */
  int32_t n_shifts;       /* context shifts made (params.context_shift) */
} ember_generate_result;

EMBER_API ember_sampling_params ember_sampling_default_params(void);
EMBER_API ember_generate_params ember_generate_default_params(void);
/* Tokenizes prompt (model's BOS rule, special tokens parsed), evaluates it from position 0
 * and generates. With cache_prompt (the default) the tokens the context already holds that
 * the prompt starts with are kept (at most all but the prompt's last token) and only the
 * rest is evaluated; otherwise, or when the cache cannot be cut there, the context is reset
 * first. A prompt longer than the context is EMBER_ERR_OUT_OF_RANGE (the context is then
 * unchanged). result may be NULL. */
EMBER_API ember_status ember_generate(ember_context* ctx, const char* prompt,
                                      const ember_generate_params* params,
                                      ember_generate_result* result);
/* Same from token ids (used as given, no BOS added). */
EMBER_API ember_status ember_generate_tokens(ember_context* ctx, const int32_t* prompt, size_t n,
                                             const ember_generate_params* params,
                                             ember_generate_result* result);
/* Like ember_generate_tokens but does not reset: evaluates prompt ids after the tokens already
 * in the cache and generates from there (the KV cache keeps the conversation across turns).
 * n >= 1 (the first token is sampled from the last prompt token's logits), and n_past + n
 * must leave room for one more token (else EMBER_ERR_OUT_OF_RANGE, nothing evaluated).
 * Penalties (repeat, presence, frequency) see this call's ids and output only. The last
 * generated token is sampled but not evaluated: afterwards ember_n_past = before + n +
 * n_generated - 1 (ember_eval it to keep it in the cache). result->n_prompt = n. */
EMBER_API ember_status ember_generate_continue(ember_context* ctx, const int32_t* ids, size_t n,
                                               const ember_generate_params* params,
                                               ember_generate_result* result);

/* ---- function calling (Octopus-style functional tokens) ------------------------
 *
 * A registry maps functional tokens of the vocabulary (`<nexa_3>`) to functions
 * with typed parameters; ember_call puts a query into the model's prompt template,
 * generates ` <nexa_3>('7 am')<nexa_end>` (by default constrained to valid calls and
 * stopped the moment the end token is sampled) and parses it into a structured call.
 * Registry format and grammar: engine/calls/functions.h, engine/calls/call.h; docs/FUNCTION-CALLING.md.
 *
 *   ember_functions* fns;
 *   ember_functions_load(model, NULL, &fns);            // from GGUF key ember.functions
 *   ember_call_params cp = ember_call_default_params();
 *   ember_call_result r;
 *   if (ember_call(ctx, fns, "Wake me at 7 am", &cp, &r) == EMBER_OK) puts(r.json);
 *   ember_call_result_free(&r);
 *   ember_functions_free(fns);
 */

typedef struct ember_functions ember_functions;

/* Loads a function registry from the functions.json at path, or, when path is NULL,
 * from the model's metadata key "ember.functions". Token texts are resolved through
 * the model's vocabulary and the call automaton is built (once, here). Errors:
 * NOT_FOUND (file, key, or a token the vocabulary lacks), BAD_FORMAT (JSON with
 * offset; missing fields; duplicates), UNSUPPORTED (a call the vocabulary cannot spell).
 * The registry is read-only afterwards and may be shared by contexts of that model. */
EMBER_API ember_status ember_functions_load(const ember_model* model, const char* path,
                                            ember_functions** out);
/* Same from JSON text (len bytes). */
EMBER_API ember_status ember_functions_parse(const ember_model* model, const char* json,
                                             size_t len, ember_functions** out);
/* Replaces the end token (default "<nexa_end>" or the registry's "nexa_end"). */
EMBER_API ember_status ember_functions_set_end_token(ember_functions* fns, const char* token);
EMBER_API void ember_functions_free(ember_functions* fns);

typedef struct ember_function_info {
  const char* name;        /* "set_alarm" (owned by the registry) */
  const char* token;       /* "<nexa_3>" */
  int32_t token_id;
  int32_t n_params;
  const char* description;
} ember_function_info;

EMBER_API int32_t ember_functions_count(const ember_functions* fns);
EMBER_API ember_status ember_functions_get(const ember_functions* fns, int32_t i,
                                           ember_function_info* out);
/* Parameter j of function i: name and type ("str", "int", "float"), owned by the registry. */
EMBER_API ember_status ember_functions_param(const ember_functions* fns, int32_t i, int32_t j,
                                             const char** name, const char** type);
EMBER_API int32_t ember_functions_end_token(const ember_functions* fns);

typedef struct ember_call_params {
  const char* prompt_template; /* "{query}" marks the query; NULL: the model's
                                  ember.prompt_template (NOT_FOUND when absent) */
  int constrain;               /* 1 (default): only valid calls can be generated */
  int early_stop;              /* 1 (default): stop when the end token is sampled */
  int count_no_stop;           /* 1: also count the tokens a run without early stopping
                                  produces (generation continues after the timed call);
                                  default 0 */
  int32_t max_tokens;          /* limit of the call; default 128 */
  int32_t max_tokens_no_stop;  /* limit without early stopping; 0 (default): EOS or a full context */
  ember_sampling_params sampling; /* default greedy (temperature 0) */
  int cache_prompt;            /* 1 (default): keep the cached tokens the prompt starts with
                                  (the template's text before the query, when the last call
                                  used the same template) and evaluate only the rest; the
                                  call is the same either way (see ember_generate_params) */
  const int32_t* allowed_functions; /* registry indices the call may choose from (an OpenAI
                                  request's `tools`); the other functional tokens are never
                                  generated (the registry's "no function" answer stays
                                  allowed). NULL/0 (default): every function. An index out
                                  of range is EMBER_ERR_INVALID_ARGUMENT. */
  size_t n_allowed_functions;
} ember_call_params;

typedef struct ember_call_result {
  int valid;                   /* 1: the output is a call of a registered function (or
                                  the registry's "no function" answer) */
  int32_t function_index;      /* registry index; -1: none */
  const char* function;        /* name, "" when none */
  const char* token;           /* functional token text, "" when none */
  const char* arguments;       /* JSON object {"time": "7 am"}; "{}" unless valid */
  const char* json;            /* {"function": ..., "arguments": {...}, "token": ...}, or
                                  {"function": ..., "error": ..., "output": ...} when not valid */
  const char* error;           /* why not valid; "" when valid */
  const char* text;            /* generated text, special tokens rendered */
  const int32_t* tokens;       /* generated ids (end token included when sampled) */
  int32_t n_tokens;
  int32_t n_prompt;            /* prompt tokens */
  int32_t n_prompt_reused;     /* of them, taken from the cache (n_prompt - n_prompt_reused
                                  were evaluated) */
  int32_t n_generated;         /* tokens sampled */
  int32_t n_call_tokens;       /* up to and including the end token */
  int32_t n_generated_no_stop; /* tokens without early stopping; -1: not measured */
  int32_t n_saved;             /* n_generated_no_stop - n_call_tokens; -1: not measured */
  int32_t n_constraint_changed;/* decoding steps where the constraint changed the argmax */
  ember_stop_reason stop_reason;
  double ttft_ms;              /* start to first generated token (prefill included) */
  double total_ms;             /* the whole call: tokenize, generate, parse */
  double prefill_ms, decode_ms;
  void* internal_;             /* storage of the strings; ember_call_result_free releases it */
  /* How sure the model was of this call: the scores of the device/server router (docs/HYBRID.md).
     Each decoding step's distribution is the softmax of its logits after the constraint
     (temperature 1) at its top-1 token, over the call's steps up to the end token. */
  float function_prob;         /* top-1 probability at the functional token's step */
  float min_prob;              /* smallest top-1 probability along the call */
  float min_margin;            /* smallest top-1 minus top-2 probability along the call */
  float mean_entropy;          /* mean entropy (nats) of the call's steps */
  float call_prob;             /* product of the call's top-1 probabilities */
  const float* hidden;         /* final-normed hidden state [n_hidden] (the output matrix's input)
                                  the functional token was predicted from: a probe's feature */
  int32_t n_hidden;
} ember_call_result;

EMBER_API ember_call_params ember_call_default_params(void);
/* Generates a call for query, the prompt evaluated as ember_generate does (cache_prompt). The strings and tokens of
 * *result stay valid until ember_call_result_free(result), which must follow every
 * EMBER_OK return. A model output that is not a valid call is EMBER_OK with
 * result->valid == 0 (possible only without constraints). */
EMBER_API ember_status ember_call(ember_context* ctx, const ember_functions* fns,
                                  const char* query, const ember_call_params* params,
                                  ember_call_result* result);
EMBER_API void ember_call_result_free(ember_call_result* result);

/* ---- LoRA adapters (run time, unmerged) -----------------------------------------
 *
 * y = W·x + Σ_i s_i·B_i·(A_i·x), s_i = scale_i·alpha_i/r_i (rsLoRA: alpha_i/sqrt(r_i)),
 * on every projection an adapter targets; base weights are never touched. An adapter
 * is a GGUF adapter file (llama.cpp's convert_lora_to_gguf layout) or a PEFT directory
 * (adapter_config.json + adapter_model.safetensors); formats in engine/lora/lora.h and
 * docs/LORA.md.
 *
 *   ember_lora* phone;
 *   ember_lora_load(model, "lora-phone.gguf", &phone);
 *   ember_context_set_lora(ctx, phone, 1.0f);      // add (or rescale)
 *   ...
 *   ember_context_remove_lora(ctx, phone);         // back to the base model, bit for bit
 *   ember_lora_free(phone);                        // after removing it from every context
 *
 * Hot swap: set/remove/clear work on a live context. When the change alters keys or
 * values already in the KV cache (any adapter touching the embedding, a layer below the
 * last, or the last layer's k/v), the context is reset (n_past = 0: re-evaluate the
 * prompt); a no-op (same scale, or a scale-0 adapter added/removed) and changes touching
 * only the output matrix or the last layer's q/o/feed-forward keep the cache. Scale 0
 * contributes nothing (exactly the base). An embedding (token_embd) adapter changes the
 * token lookup only, before any embedding scale (as llama.cpp applies it); an output
 * matrix tied to token_embd stays unadapted (as in PEFT's unmerged forward). */

typedef struct ember_lora ember_lora;

typedef struct ember_lora_info {
  int32_t rank;      /* largest rank of its weights */
  float alpha;       /* 0: no alpha (factor 1) */
  int32_t n_weights; /* adapted weight matrices */
  int affects_cache; /* 1: setting it resets contexts (see above) */
} ember_lora_info;

/* path: a GGUF adapter or a PEFT directory, validated against the model (architecture,
 * every shape; errors name the tensor). The adapter must outlive the contexts using it. */
EMBER_API ember_status ember_lora_load(const ember_model* model, const char* path, ember_lora** out);
EMBER_API void ember_lora_free(ember_lora* lora);
EMBER_API ember_status ember_lora_get_info(const ember_lora* lora, ember_lora_info* out);
/* Adds lora at scale, or changes its scale when already set. */
EMBER_API ember_status ember_context_set_lora(ember_context* ctx, const ember_lora* lora, float scale);
/* EMBER_ERR_NOT_FOUND when lora is not set on ctx. */
EMBER_API ember_status ember_context_remove_lora(ember_context* ctx, const ember_lora* lora);
EMBER_API ember_status ember_context_clear_loras(ember_context* ctx);
EMBER_API int32_t ember_context_n_loras(ember_context* ctx);

/* Automatic blend weights (Crayon, arXiv 2406.07007; `ember lora blend --weights auto`).
 * Each adapter carries task examples: texts of its task, read from the GGUF metadata key
 * ember.lora.task_examples (string array) or set here, and written by ember_lora_save
 * (ember_tools.h). Computing the weights needs only the forward pass: it is part of the
 * runtime library, so an application can choose blend weights per request. */
EMBER_API ember_status ember_lora_set_task_examples(ember_lora* lora, const char* const* texts, size_t n);
/* weights[i] = softmax(similarity / temperature) over the n adapters, where similarity[i]
 * compares the base model's mean final-normed hidden state over `examples` (mean over each
 * text's tokens, BOS excluded, then over the texts) with the same over adapter i's task
 * examples: the cosine (centered = 0), or the cosine after subtracting the mean of the
 * adapters' states from both (centered = 1, recommended: see docs/LORA.md).
 * temperature <= 0: the default, 0.1 centered, 0.01 plain. n_threads 0: the performance cores.
 * similarity may be NULL; weights receives n floats summing to 1. EMBER_ERR_INVALID_ARGUMENT
 * names an adapter without task examples. */
EMBER_API ember_status ember_lora_auto_weights(const ember_model* model, const ember_lora* const* loras, size_t n,
                                               const char* const* examples, size_t n_examples, int centered,
                                               float temperature, int32_t n_threads, float* similarity,
                                               float* weights);

#ifdef __cplusplus
}
#endif
#endif /* EMBER_EMBER_H */
