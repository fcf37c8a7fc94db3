/* Minimal embedding of Ember (docs/EMBEDDING.md): load a model, generate a few tokens,
 * make a function call, free everything. Exits non-zero on any error.
 *
 *   minimal MODEL.gguf FUNCTIONS.json
 *
 * With the bundled octopus-tiny (models/octopus-tiny.gguf, models/functions.json) the
 * call for "What's the weather in Paris?" is get_weather. */
#include <stdio.h>
#include <string.h>

#include "ember/ember.h"

static int print_token(int32_t token, const char* text, size_t len, void* user) {
  (void)token;
  (void)user;
  fwrite(text, 1, len, stdout);
  return 0; /* 0: keep going */
}

static int check(ember_status st, const char* what) {
  if (st == EMBER_OK) return 1;
  fprintf(stderr, "minimal: %s failed: %s (%s)\n", what, ember_last_error(), ember_status_name(st));
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MODEL.gguf FUNCTIONS.json\n", argv[0]);
    return 2;
  }
  int ok = 0;
  ember_model* model = NULL;
  ember_context* ctx = NULL;
  ember_functions* fns = NULL;
  ember_call_result call;
  memset(&call, 0, sizeof call);

  ember_set_log_level(3); /* errors only */
  if (!check(ember_model_load(argv[1], NULL, &model), "ember_model_load")) goto done;
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 256;
  cp.n_threads = 2;
  if (!check(ember_context_create(model, &cp, &ctx), "ember_context_create")) goto done;

  /* A few tokens, greedy. */
  ember_generate_params gp = ember_generate_default_params();
  gp.max_tokens = 8;
  gp.sampling.temperature = 0;
  gp.stop_at_eos = 0; /* exactly max_tokens */
  gp.on_token = print_token;
  ember_generate_result gr;
  printf("generate: ");
  if (!check(ember_generate(ctx, "Hello", &gp, &gr), "ember_generate")) goto done;
  printf("\n(%d tokens)\n", gr.n_generated);
  if (gr.n_generated <= 0) {
    fprintf(stderr, "minimal: generated nothing\n");
    goto done;
  }

  /* A function call: the registry from functions.json, the prompt template from the model. */
  if (!check(ember_functions_load(model, argv[2], &fns), "ember_functions_load")) goto done;
  ember_call_params callp = ember_call_default_params();
  if (!check(ember_call(ctx, fns, "What's the weather in Paris?", &callp, &call), "ember_call")) goto done;
  printf("call: %s\n", call.json);
  if (!call.valid || strcmp(call.function, "get_weather") != 0) {
    fprintf(stderr, "minimal: expected a valid get_weather call, got '%s'\n", call.function);
    goto done;
  }
  ok = 1;

done:
  ember_call_result_free(&call);
  ember_functions_free(fns);
  ember_context_free(ctx);
  ember_model_free(model);
  return ok ? 0 : 1;
}
