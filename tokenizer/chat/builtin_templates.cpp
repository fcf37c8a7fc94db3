// Ember's built-in chat templates, for model files that carry no tokenizer.chat_template.
// Each is our own Jinja text for a model family's published prompt format (the comment
// above it shows a rendered conversation). Special tokens come from the model's
// vocabulary when the caller passes them (bos_token, eos_token), else the family's usual
// text.
#include "tokenizer/chat/chat_template.h"

namespace ember {
namespace {

struct BuiltinTemplate {
  std::string_view name;
  std::string_view source;
};

// ChatML (Qwen, SmolLM, ...): <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n
constexpr std::string_view kChatml = R"JINJA(
{%- for message in messages -%}
  {{- '<|im_start|>' ~ message.role ~ '\n' ~ message.content ~ '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
)JINJA";

// Llama 2 chat: <s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello </s><s>[INST] More [/INST]
// The system prompt goes inside the first [INST]; each user turn opens with BOS, each
// assistant answer ends with EOS. The prompt always ends after [/INST], so the
// generation prompt adds nothing.
constexpr std::string_view kLlama2 = R"JINJA(
{%- set bos = bos_token if bos_token is defined else '<s>' -%}
{%- set eos = eos_token if eos_token is defined else '</s>' -%}
{%- set ns = namespace(system='') -%}
{%- for message in messages -%}
  {%- if message.role == 'system' -%}
    {%- set ns.system = '<<SYS>>\n' ~ message.content | trim ~ '\n<</SYS>>\n\n' -%}
  {%- elif message.role == 'user' -%}
    {{- bos ~ '[INST] ' ~ ns.system ~ message.content | trim ~ ' [/INST]' -}}
    {%- set ns.system = '' -%}
  {%- elif message.role == 'assistant' -%}
    {{- ' ' ~ message.content | trim ~ ' ' ~ eos -}}
  {%- endif -%}
{%- endfor -%}
)JINJA";

// Llama 3: <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>
//          <|start_header_id|>assistant<|end_header_id|>\n\n
constexpr std::string_view kLlama3 = R"JINJA(
{{- bos_token if bos_token is defined else '<|begin_of_text|>' -}}
{%- for message in messages -%}
  {{- '<|start_header_id|>' ~ message.role ~ '<|end_header_id|>\n\n' ~ message.content | trim ~ '<|eot_id|>' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
{%- endif -%}
)JINJA";

// Gemma: <bos><start_of_turn>user\nS\n\nHi<end_of_turn>\n<start_of_turn>model\n
// Gemma has no system role: the system text opens the first user turn; the assistant's
// role is called "model".
constexpr std::string_view kGemma = R"JINJA(
{{- bos_token if bos_token is defined else '<bos>' -}}
{%- set ns = namespace(prefix='') -%}
{%- for message in messages -%}
  {%- if message.role == 'system' -%}
    {%- set ns.prefix = message.content | trim ~ '\n\n' -%}
  {%- else -%}
    {{- '<start_of_turn>' ~ ('model' if message.role == 'assistant' else message.role) ~ '\n' -}}
    {{- ns.prefix ~ message.content | trim ~ '<end_of_turn>\n' -}}
    {%- set ns.prefix = '' -%}
  {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<start_of_turn>model\n' -}}
{%- endif -%}
)JINJA";

// Phi-3: <|system|>\nS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n
constexpr std::string_view kPhi3 = R"JINJA(
{%- for message in messages -%}
  {{- '<|' ~ message.role ~ '|>\n' ~ message.content ~ '<|end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|assistant|>\n' -}}
{%- endif -%}
)JINJA";

// Zephyr: <|system|>\nS</s>\n<|user|>\nHi</s>\n<|assistant|>\n
constexpr std::string_view kZephyr = R"JINJA(
{%- set eos = eos_token if eos_token is defined else '</s>' -%}
{%- for message in messages -%}
  {{- '<|' ~ message.role ~ '|>\n' ~ message.content ~ eos ~ '\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
  {{- '<|assistant|>\n' -}}
{%- endif -%}
)JINJA";

constexpr BuiltinTemplate kBuiltins[] = {
    {"chatml", kChatml}, {"llama2", kLlama2}, {"llama3", kLlama3},
    {"gemma", kGemma},   {"phi3", kPhi3},     {"zephyr", kZephyr},
};

}  // namespace

const std::vector<std::string_view>& ChatTemplate::BuiltinNames() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const BuiltinTemplate& b : kBuiltins) v.push_back(b.name);
    return v;
  }();
  return names;
}

std::string_view ChatTemplate::BuiltinSource(std::string_view name) {
  for (const BuiltinTemplate& b : kBuiltins)
    if (b.name == name) return b.source;
  return {};
}

}  // namespace ember
