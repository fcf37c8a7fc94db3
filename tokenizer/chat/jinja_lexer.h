// The Jinja lexer: template source -> tokens, with Jinja2's whitespace control applied to
// the text between tags, configured as Hugging Face renders chat templates:
//  - newlines normalised: "\r\n" and "\r" become "\n", and one trailing newline of the
//    source is dropped (Jinja2's keep_trailing_newline=False);
//  - trim_blocks: the first newline after a block or comment tag (`%}`, `#}`) is removed;
//  - lstrip_blocks: spaces and tabs from the start of a line up to a block or comment tag
//    are removed (not before `{{`, not with `{%+`);
//  - `{%-` / `{{-` / `{#-` strip all whitespace before the tag, `-%}` / `-}}` / `-#}` all
//    whitespace after it; `+%}` keeps the newline trim_blocks would remove.
// Comments are dropped. Inside tags: names, string / integer / float literals, operators.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember::jinja {

enum class TokenKind : uint8_t {
  kText,        // template text, whitespace control applied
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,      // escapes resolved
  kInt,
  kFloat,
  kOp,          // + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { }
  kEof,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;  // text, name, string value or operator
  int64_t i = 0;
  double f = 0;
  int line = 1, column = 1;
};

// The error prefix of every message: "chat template: line L, column C: ".
std::string Where(int line, int column);

// BadFormat "chat template: line L, column C: ..." for an unterminated tag, comment or
// string, or a character that starts no token.
Status Lex(std::string_view source, std::vector<Token>* out);

}  // namespace ember::jinja
