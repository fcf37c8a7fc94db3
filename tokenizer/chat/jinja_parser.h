// The Jinja parser: tokens (jinja_lexer.h) -> syntax tree (jinja_ast.h), with Jinja2's
// operator precedence (lowest first): `x if c else y`; or; and; not; comparisons and
// in / not in; + -; ~ (Jinja2 3 puts concatenation between + - and * /); * / // %; **;
// unary - +; then postfix .attr [index] [a:b:c] (call) and the filters `| f(args)` and
// tests `is [not] t(args)`, which bind tighter than any operator
// (`'a' + x | trim` is `'a' + (x | trim)`).
//
// Statements: if / elif / else, for (tuple targets, inline `if`, else; break and continue),
// set (names, tuples, `ns.attr`, block form), macro, filter blocks, Hugging Face's
// generation blocks. Anything else ({% include %}, {% call %}, {% raw %}, ...) is
// Unsupported naming the statement and its line. Nesting (brackets, blocks) deeper than
// kMaxNesting and expression trees taller than kMaxExprDepth (long chains such as
// 1 + 1 + ... or a|f|f|...) are BadFormat, so hostile input cannot exhaust the stack of the
// parser, the evaluator or the tree's destructor.
#pragma once
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/chat/jinja_ast.h"
#include "tokenizer/chat/jinja_lexer.h"

namespace ember::jinja {

constexpr int kMaxNesting = 64;
constexpr int kMaxExprDepth = 256;

Status Parse(std::string_view source, Body* out);

}  // namespace ember::jinja
