// The evaluator's class, shared by jinja_eval.cpp (statements, scopes) and jinja_expr.cpp
// (expressions). Internal to tokenizer/chat/; the interface is jinja_eval.h.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/chat/jinja_eval.h"

namespace ember::jinja {

class Evaluator {
 public:
  explicit Evaluator(const ValueDict& vars);
  Status RenderBody(const Body& body);
  std::string& output() { return out_; }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  struct Frame {
    std::unordered_map<std::string, Value> vars;
    bool macro_barrier = false;  // a macro call: names resolve here, then at the top level
  };

  // ---- statements (jinja_eval.cpp) ----
  Value Lookup(const std::string& name) const;
  void Assign(const std::string& name, Value v);
  Status Emit(std::string_view s, int line);
  Status Capture(const Body& body, std::string* text);
  Status RenderNode(const Node& n);
  Status RenderIf(const Node& n);
  Status RenderFor(const Node& n);
  Status RenderSet(const Node& n);
  Status LoopItems(const Node& n, ValueList* items);
  Status BindTargets(const std::vector<std::string>& targets, const Value& item, int line);
  Status CallMacro(const Callable& c, const CallArgs& args, Value* out);
  Status CheckWork(int line) const;

  // ---- expressions (jinja_expr.cpp) ----
  Status Eval(const Expr& e, Value* out);
  Status EvalCollection(const Expr& e, Value* out);
  Status EvalBinary(const Expr& e, Value* out);
  Status EvalUnary(const Expr& e, Value* out);
  Status EvalCall(const Expr& e, Value* out);
  Status EvalArgs(const std::vector<Arg>& args, int line, CallArgs* out);
  // A filter chain; `block_input` replaces the innermost missing input ({% filter %}).
  Status EvalFilter(const Expr& e, const Value* block_input, Value* out);
  Status EvalTest(const Expr& e, Value* out);
  Status EvalSlice(const Expr& e, Value* out);
  Status Call(const Value& callee, const std::string& what, const CallArgs& args, Value* out);

  std::vector<Frame> frames_;  // [0] globals and variables, [1] the template's top level
  std::string out_;
  Flow flow_ = Flow::kNormal;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  uint64_t string_bytes_at_start_ = 0;  // StringBytesMade() when the render began
};

// The items `for` visits in v: a list's items, a dict's keys, a string's code points;
// none for undefined. Other kinds are an error.
Status Iterate(const Value& v, int line, ValueList* out);
// obj[key]: list / string by (negative) integer index, dict by string key; Undefined when
// absent.
Value Subscript(const Value& obj, const Value& key);
// Arithmetic and comparison of two evaluated operands (+ - * / // % ** ~ == != < <= > >=
// in notin).
Status BinaryOp(const std::string& op, const Value& a, const Value& b, int line, Value* out);

}  // namespace ember::jinja
