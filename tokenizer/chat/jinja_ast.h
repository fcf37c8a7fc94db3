// The syntax tree of a parsed Jinja template (jinja_parser.h builds it, jinja_eval.h runs it).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/chat/jinja_value.h"

namespace ember::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

// A call argument: positional when name is empty, else keyword (name=value).
struct Arg {
  std::string name;
  ExprPtr value;
};

struct Expr {
  enum class Kind {
    kLiteral,    // value
    kName,       // name
    kList,       // items (tuples too)
    kDict,       // items: key, value, key, value, ...
    kAttr,       // a.name: items[0], name
    kSubscript,  // a[b]: items[0], items[1]
    kSlice,      // a[start:stop:step]: items[0], items[1..3] (null when absent)
    kCall,       // f(args): items[0], args
    kFilter,     // items[0] | name(args); items[0] null in a {% filter %} block
    kTest,       // items[0] is [not] name(args)
    kUnary,      // op items[0]: "-", "+", "not"
    kBinary,     // items[0] op items[1]: + - * / // % ** ~ == != < <= > >= in notin and or
    kCond,       // items[1] if items[0] else items[2] (items[2] null: undefined)
  };
  Kind kind;
  int line = 0;
  int depth = 1;     // height of this subtree (bounded by the parser)
  std::string name;  // name, attribute, filter, test, operator
  bool negated = false;  // `is not`
  Value value;
  std::vector<ExprPtr> items;
  std::vector<Arg> args;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null: none given
};

struct Node {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // conds[i] -> bodies[i]; bodies.back() the else body when size > conds
    kFor,          // for targets in expr [if cond]: bodies[0], bodies[1] the else body
    kSet,          // set targets = expr, or set name.attr = expr (attr non-empty)
    kSetBlock,     // set name %}...{% endset: bodies[0] (optional filter in expr)
    kMacro,        // macro name(params): bodies[0]
    kFilterBlock,  // filter f %}...{% endfilter: expr is a kFilter without input
    kBreak,
    kContinue,
    kScope,        // bodies[0] rendered as is ({% generation %} of Hugging Face templates)
  };
  Kind kind;
  int line = 0;
  std::string text;
  std::string attr;
  std::vector<std::string> targets;
  ExprPtr expr;
  ExprPtr cond;  // kFor's inline filter
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;
  std::vector<MacroParam> params;
};

}  // namespace ember::jinja
