// The Jinja evaluator (jinja_eval.h): statements and scopes. Expressions are in
// jinja_expr.cpp, filters, tests and methods in jinja_filters.cpp.
#include "tokenizer/chat/jinja_eval.h"

#include <cmath>
#include <ctime>

#include "tokenizer/chat/jinja_evaluator.h"

namespace ember::jinja {

Status RuntimeError(int line, const std::string& what, bool unsupported) {
  std::string m = "chat template: line " + std::to_string(line) + ": " + what;
  return unsupported ? Unsupported(std::move(m)) : InvalidArgument(std::move(m));
}

Status CheckSize(size_t n, int line) {
  if (n <= kMaxOutputBytes) return Status::Ok();
  return Status(Code::kOutOfRange, "chat template: line " + std::to_string(line) + ": a string or the output exceeds " +
                                       std::to_string(kMaxOutputBytes) + " bytes");
}

Status CheckItems(size_t n, int line) {
  if (n <= kMaxListItems) return Status::Ok();
  return Status(Code::kOutOfRange, "chat template: line " + std::to_string(line) + ": a list exceeds " +
                                       std::to_string(kMaxListItems) + " items");
}

const Value* CallArgs::Get(size_t i, const char* name) const {
  if (i < positional.size()) return &positional[i];
  for (const auto& [k, v] : keyword)
    if (k == name) return &v;
  return nullptr;
}

namespace {

std::shared_ptr<const Callable> Builtin(std::string name, std::function<Status(const CallArgs&, Value*)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = std::move(name);
  c->builtin = std::move(fn);
  return c;
}

Status Range(const CallArgs& a, Value* out) {
  int64_t start = 0, stop = 0, step = 1;
  for (const Value& v : a.positional)
    if (!v.is_int() && !v.is_bool()) return RuntimeError(a.line, std::string("range() takes integers, not ") + KindName(v));
  if (a.positional.size() == 1) {
    stop = a.positional[0].as_int();
  } else if (a.positional.size() == 2 || a.positional.size() == 3) {
    start = a.positional[0].as_int();
    stop = a.positional[1].as_int();
    if (a.positional.size() == 3) step = a.positional[2].as_int();
  } else {
    return RuntimeError(a.line, "range() takes 1 to 3 arguments");
  }
  if (step == 0) return RuntimeError(a.line, "range() step must not be zero");
  // Item count without overflow: start, stop and step are int64.
  const long double span = step > 0 ? static_cast<long double>(stop) - start : static_cast<long double>(start) - stop;
  const long double stride = step > 0 ? static_cast<long double>(step) : -static_cast<long double>(step);
  const long double count = span <= 0 ? 0 : std::ceil(span / stride);
  if (count > kMaxListItems) return CheckItems(kMaxListItems + 1, a.line);
  ValueList items;
  for (int64_t i = 0, v = start; i < static_cast<int64_t>(count); ++i, v += step) items.push_back(Value::Int(v));
  *out = Value::List(std::move(items));
  return Status::Ok();
}

Status StrftimeNow(const CallArgs& a, Value* out) {
  const Value* fmt = a.Get(0, "format");
  if (!fmt || !fmt->is_string()) return RuntimeError(a.line, "strftime_now() takes a format string");
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[512];
  size_t n = fmt->str().empty() ? 0 : std::strftime(buf, sizeof buf, fmt->str().c_str(), &tm);
  if (n == 0 && !fmt->str().empty()) return RuntimeError(a.line, "strftime_now(): format gives no text or too long");
  *out = Value::String(std::string(buf, n));
  return Status::Ok();
}

Status MakeDict(const CallArgs& a, bool as_namespace, Value* out) {
  ValueDict d;
  for (const Value& v : a.positional) {
    if (!v.is_mapping()) return RuntimeError(a.line, "namespace() / dict() take a mapping or keyword arguments");
    for (const auto& [k, item] : v.dict().items) d.Set(k, item);
  }
  for (const auto& [k, v] : a.keyword) d.Set(k, v);
  *out = as_namespace ? Value::Namespace(std::move(d)) : Value::Dict(std::move(d));
  return Status::Ok();
}

ValueDict Globals(const ValueDict& vars) {
  ValueDict g;
  g.Set("range", Value::Function(Builtin("range", Range)));
  g.Set("strftime_now", Value::Function(Builtin("strftime_now", StrftimeNow)));
  g.Set("namespace", Value::Function(Builtin("namespace", [](const CallArgs& a, Value* out) {
          return MakeDict(a, true, out);
        })));
  g.Set("dict", Value::Function(Builtin("dict", [](const CallArgs& a, Value* out) { return MakeDict(a, false, out); })));
  g.Set("raise_exception", Value::Function(Builtin("raise_exception", [](const CallArgs& a, Value*) {
          const Value* msg = a.Get(0, "message");
          return InvalidArgument("chat template: " + (msg ? ToString(*msg) : std::string("raise_exception()")));
        })));
  for (const auto& [k, v] : vars.items) g.Set(k, v);
  return g;
}

}  // namespace

Evaluator::Evaluator(const ValueDict& vars) : string_bytes_at_start_(StringBytesMade()) {
  frames_.emplace_back();
  for (auto& [k, v] : Globals(vars).items) frames_[0].vars[k] = v;
  frames_.emplace_back();  // the template's top level
}

Value Evaluator::Lookup(const std::string& name) const {
  for (size_t i = frames_.size(); i-- > 0;) {
    auto it = frames_[i].vars.find(name);
    if (it != frames_[i].vars.end()) return it->second;
    if (frames_[i].macro_barrier && i > 2) i = 2;  // a macro sees its own frame, then the top level
  }
  return Value::Undefined(name);
}

void Evaluator::Assign(const std::string& name, Value v) { frames_.back().vars[name] = std::move(v); }

Status Evaluator::CheckWork(int line) const {
  if (StringBytesMade() - string_bytes_at_start_ <= kMaxStringWork) return Status::Ok();
  return Status(Code::kOutOfRange, "chat template: line " + std::to_string(line) + ": more than " +
                                       std::to_string(kMaxStringWork) + " bytes of strings made");
}

Status Evaluator::Emit(std::string_view s, int line) {
  EMBER_RETURN_IF_ERROR(CheckSize(out_.size() + s.size(), line));
  EMBER_RETURN_IF_ERROR(CheckWork(line));
  out_.append(s);
  return Status::Ok();
}

Status Evaluator::Capture(const Body& body, std::string* text) {
  std::string saved;
  saved.swap(out_);
  Status st = RenderBody(body);
  text->swap(out_);
  out_.swap(saved);
  return st;
}

Status Evaluator::RenderBody(const Body& body) {
  for (const NodePtr& n : body) {
    EMBER_RETURN_IF_ERROR(RenderNode(*n));
    if (flow_ != Flow::kNormal) return Status::Ok();
  }
  return Status::Ok();
}

Status Evaluator::RenderNode(const Node& n) {
  switch (n.kind) {
    case Node::Kind::kText: return Emit(n.text, n.line);
    case Node::Kind::kOutput: {
      Value v;
      EMBER_RETURN_IF_ERROR(Eval(*n.expr, &v));
      return v.is_undefined() ? Status::Ok() : Emit(ToString(v), n.line);
    }
    case Node::Kind::kIf: return RenderIf(n);
    case Node::Kind::kFor: return RenderFor(n);
    case Node::Kind::kSet: return RenderSet(n);
    case Node::Kind::kSetBlock: {
      std::string text;
      EMBER_RETURN_IF_ERROR(Capture(n.bodies[0], &text));
      Assign(n.targets[0], Value::String(std::move(text)));
      return Status::Ok();
    }
    case Node::Kind::kMacro: {
      auto c = std::make_shared<Callable>();
      c->name = n.text;
      c->macro = &n;
      Assign(n.text, Value::Function(std::move(c)));
      return Status::Ok();
    }
    case Node::Kind::kFilterBlock: {
      std::string text;
      EMBER_RETURN_IF_ERROR(Capture(n.bodies[0], &text));
      Value input = Value::String(std::move(text)), v;
      EMBER_RETURN_IF_ERROR(EvalFilter(*n.expr, &input, &v));
      return v.is_undefined() ? Status::Ok() : Emit(ToString(v), n.line);
    }
    case Node::Kind::kBreak: flow_ = Flow::kBreak; return Status::Ok();
    case Node::Kind::kContinue: flow_ = Flow::kContinue; return Status::Ok();
    case Node::Kind::kScope: return RenderBody(n.bodies[0]);
  }
  return Status::Ok();
}

Status Evaluator::RenderIf(const Node& n) {
  for (size_t i = 0; i < n.conds.size(); ++i) {
    Value c;
    EMBER_RETURN_IF_ERROR(Eval(*n.conds[i], &c));
    if (c.Truthy()) return RenderBody(n.bodies[i]);
  }
  if (n.bodies.size() > n.conds.size()) return RenderBody(n.bodies.back());
  return Status::Ok();
}

Status Evaluator::BindTargets(const std::vector<std::string>& targets, const Value& item, int line) {
  if (targets.size() == 1) {
    Assign(targets[0], item);
    return Status::Ok();
  }
  if (!item.is_list() || item.list().size() != targets.size())
    return RuntimeError(line, "cannot unpack " + std::string(KindName(item)) + " into " +
                                  std::to_string(targets.size()) + " names");
  for (size_t i = 0; i < targets.size(); ++i) Assign(targets[i], item.list()[i]);
  return Status::Ok();
}

// The items a for loop visits, after its inline `if` filter.
Status Evaluator::LoopItems(const Node& n, ValueList* items) {
  Value iterable;
  EMBER_RETURN_IF_ERROR(Eval(*n.expr, &iterable));
  ValueList all;
  EMBER_RETURN_IF_ERROR(Iterate(iterable, n.line, &all));
  if (!n.cond) {
    *items = std::move(all);
    return Status::Ok();
  }
  for (Value& item : all) {
    frames_.emplace_back();
    Status st = BindTargets(n.targets, item, n.line);
    Value keep;
    if (st.ok()) st = Eval(*n.cond, &keep);
    frames_.pop_back();
    EMBER_RETURN_IF_ERROR(st);
    if (keep.Truthy()) items->push_back(std::move(item));
  }
  return Status::Ok();
}

namespace {

Value LoopObject(const ValueList& items, size_t i) {
  const int64_t n = static_cast<int64_t>(items.size()), k = static_cast<int64_t>(i);
  ValueDict d;
  d.Set("index", Value::Int(k + 1));
  d.Set("index0", Value::Int(k));
  d.Set("revindex", Value::Int(n - k));
  d.Set("revindex0", Value::Int(n - k - 1));
  d.Set("first", Value::Bool(k == 0));
  d.Set("last", Value::Bool(k == n - 1));
  d.Set("length", Value::Int(n));
  d.Set("depth", Value::Int(1));
  d.Set("depth0", Value::Int(0));
  d.Set("previtem", k > 0 ? items[i - 1] : Value::Undefined("previtem"));
  d.Set("nextitem", k + 1 < n ? items[i + 1] : Value::Undefined("nextitem"));
  return Value::Dict(std::move(d));
}

}  // namespace

Status Evaluator::RenderFor(const Node& n) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(LoopItems(n, &items));
  if (items.empty()) {
    frames_.emplace_back();
    Status st = RenderBody(n.bodies[1]);
    frames_.pop_back();
    return st;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (++iterations_ > kMaxLoopIterations)
      return Status(Code::kOutOfRange, "chat template: line " + std::to_string(n.line) + ": more than " +
                                           std::to_string(kMaxLoopIterations) + " loop iterations");
    EMBER_RETURN_IF_ERROR(CheckWork(n.line));
    frames_.emplace_back();
    Status st = BindTargets(n.targets, items[i], n.line);
    if (st.ok()) {
      Assign("loop", LoopObject(items, i));
      st = RenderBody(n.bodies[0]);
    }
    frames_.pop_back();
    EMBER_RETURN_IF_ERROR(st);
    Flow f = flow_;
    flow_ = Flow::kNormal;
    if (f == Flow::kBreak) break;
  }
  return Status::Ok();
}

Status Evaluator::RenderSet(const Node& n) {
  Value v;
  EMBER_RETURN_IF_ERROR(Eval(*n.expr, &v));
  if (n.attr.empty()) return BindTargets(n.targets, v, n.line);
  Value target = Lookup(n.targets[0]);
  if (!target.is_namespace())
    return RuntimeError(n.line, "cannot set '" + n.attr + "' on '" + n.targets[0] + "' (" + KindName(target) +
                                    "): only a namespace() takes attribute assignment");
  target.namespace_dict().Set(n.attr, std::move(v));
  return Status::Ok();
}

Status Evaluator::CallMacro(const Callable& c, const CallArgs& args, Value* out) {
  const Node& m = *c.macro;
  if (call_depth_ >= kMaxCallDepth)
    return Status(Code::kOutOfRange, "chat template: line " + std::to_string(args.line) +
                                         ": macro calls nested deeper than " + std::to_string(kMaxCallDepth));
  if (args.positional.size() > m.params.size())
    return RuntimeError(args.line, "macro '" + m.text + "' takes " + std::to_string(m.params.size()) +
                                       " arguments, " + std::to_string(args.positional.size()) + " given");
  EMBER_RETURN_IF_ERROR(CheckWork(args.line));
  frames_.emplace_back();
  frames_.back().macro_barrier = true;
  Status st;
  for (size_t i = 0; i < m.params.size() && st.ok(); ++i) {
    const MacroParam& p = m.params[i];
    const Value* given = args.Get(i, p.name.c_str());
    Value v = Value::Undefined(p.name);
    if (given) {
      v = *given;
    } else if (p.default_value) {
      st = Eval(*p.default_value, &v);
    }
    Assign(p.name, std::move(v));
  }
  std::string text;
  ++call_depth_;
  if (st.ok()) st = Capture(m.bodies[0], &text);
  --call_depth_;
  flow_ = Flow::kNormal;
  frames_.pop_back();
  EMBER_RETURN_IF_ERROR(st);
  *out = Value::String(std::move(text));
  return Status::Ok();
}

namespace {

void CheckExpr(const Expr* e, Status* st) {
  if (!e || !st->ok()) return;
  if (e->kind == Expr::Kind::kFilter && !IsKnownFilter(e->name))
    *st = RuntimeError(e->line, "the filter '" + e->name + "' is not supported", true);
  if (e->kind == Expr::Kind::kTest && !IsKnownTest(e->name))
    *st = RuntimeError(e->line, "the test '" + e->name + "' is not supported", true);
  for (const ExprPtr& c : e->items) CheckExpr(c.get(), st);
  for (const Arg& a : e->args) CheckExpr(a.value.get(), st);
}

void CheckBody(const Body& body, Status* st) {
  for (const NodePtr& n : body) {
    CheckExpr(n->expr.get(), st);
    CheckExpr(n->cond.get(), st);
    for (const ExprPtr& c : n->conds) CheckExpr(c.get(), st);
    for (const MacroParam& p : n->params) CheckExpr(p.default_value.get(), st);
    for (const Body& b : n->bodies) CheckBody(b, st);
  }
}

}  // namespace

Status CheckSupported(const Body& body) {
  Status st;
  CheckBody(body, &st);
  return st;
}

Status Render(const Body& body, const ValueDict& vars, std::string* out) {
  Evaluator ev(vars);
  EMBER_RETURN_IF_ERROR(ev.RenderBody(body));
  *out = std::move(ev.output());
  return Status::Ok();
}

}  // namespace ember::jinja
