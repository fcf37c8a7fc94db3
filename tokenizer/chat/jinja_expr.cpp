// The Jinja evaluator's expressions (jinja_evaluator.h): names, literals, operators,
// subscripts and slices, calls, filters and tests.
#include <cmath>

#include "tokenizer/chat/jinja_evaluator.h"

namespace ember::jinja {

Status Iterate(const Value& v, int line, ValueList* out) {
  out->clear();
  switch (v.kind()) {
    case Value::Kind::kUndefined: return Status::Ok();
    case Value::Kind::kList: *out = v.list(); return Status::Ok();
    case Value::Kind::kDict:
      for (const auto& [k, item] : v.dict().items) out->push_back(Value::String(k));
      return Status::Ok();
    case Value::Kind::kString:
      for (std::string& cp : SplitCodePoints(v.str())) out->push_back(Value::String(std::move(cp)));
      return Status::Ok();
    default: return RuntimeError(line, std::string("cannot iterate over a value of type ") + KindName(v));
  }
}

Value Subscript(const Value& obj, const Value& key) {
  if (obj.is_mapping()) return key.is_string() ? obj.Get(key.str()) : Value::Undefined();
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t n = Length(obj), i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::Undefined();
    if (obj.is_list()) return obj.list()[static_cast<size_t>(i)];
    return Value::String(SplitCodePoints(obj.str())[static_cast<size_t>(i)]);
  }
  return Value::Undefined(obj.is_undefined() ? obj.str() : std::string());
}

Status Evaluator::Eval(const Expr& e, Value* out) {
  switch (e.kind) {
    case Expr::Kind::kLiteral: *out = e.value; return Status::Ok();
    case Expr::Kind::kName: *out = Lookup(e.name); return Status::Ok();
    case Expr::Kind::kList:
    case Expr::Kind::kDict: return EvalCollection(e, out);
    case Expr::Kind::kAttr: {
      Value obj;
      EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &obj));
      *out = obj.is_mapping() ? obj.Get(e.name) : Value::Undefined(e.name);
      return Status::Ok();
    }
    case Expr::Kind::kSubscript: {
      Value obj, key;
      EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &obj));
      EMBER_RETURN_IF_ERROR(Eval(*e.items[1], &key));
      *out = Subscript(obj, key);
      return Status::Ok();
    }
    case Expr::Kind::kSlice: return EvalSlice(e, out);
    case Expr::Kind::kCall: return EvalCall(e, out);
    case Expr::Kind::kFilter: return EvalFilter(e, nullptr, out);
    case Expr::Kind::kTest: return EvalTest(e, out);
    case Expr::Kind::kUnary: return EvalUnary(e, out);
    case Expr::Kind::kBinary: return EvalBinary(e, out);
    case Expr::Kind::kCond: {
      Value c;
      EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &c));
      if (c.Truthy()) return Eval(*e.items[1], out);
      if (e.items[2]) return Eval(*e.items[2], out);
      *out = Value::Undefined();
      return Status::Ok();
    }
  }
  return RuntimeError(e.line, "internal: unknown expression");
}

Status Evaluator::EvalCollection(const Expr& e, Value* out) {
  if (e.kind == Expr::Kind::kList) {
    ValueList items;
    for (const ExprPtr& item : e.items) {
      items.emplace_back();
      EMBER_RETURN_IF_ERROR(Eval(*item, &items.back()));
    }
    *out = Value::List(std::move(items));
    return Status::Ok();
  }
  ValueDict d;
  for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
    Value k, v;
    EMBER_RETURN_IF_ERROR(Eval(*e.items[i], &k));
    EMBER_RETURN_IF_ERROR(Eval(*e.items[i + 1], &v));
    if (!k.is_string()) return RuntimeError(e.line, std::string("dict keys must be strings, not ") + KindName(k), true);
    d.Set(k.str(), std::move(v));
  }
  *out = Value::Dict(std::move(d));
  return Status::Ok();
}

Status Evaluator::EvalUnary(const Expr& e, Value* out) {
  Value v;
  EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &v));
  if (e.name == "not") {
    *out = Value::Bool(!v.Truthy());
    return Status::Ok();
  }
  if (!v.is_number()) {
    if (v.is_undefined()) return RuntimeError(e.line, "'" + v.str() + "' is undefined");
    return RuntimeError(e.line, "bad operand type for unary " + e.name + ": " + KindName(v));
  }
  if (e.name == "+") *out = v.is_float() ? v : Value::Int(v.as_int());
  else *out = v.is_float() ? Value::Float(-v.as_float()) : Value::Int(-v.as_int());
  return Status::Ok();
}

Status Evaluator::EvalBinary(const Expr& e, Value* out) {
  Value a;
  EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &a));
  if (e.name == "and" || e.name == "or") {  // Python: the deciding operand itself
    if (a.Truthy() == (e.name == "or")) {
      *out = a;
      return Status::Ok();
    }
    return Eval(*e.items[1], out);
  }
  Value b;
  EMBER_RETURN_IF_ERROR(Eval(*e.items[1], &b));
  return BinaryOp(e.name, a, b, e.line, out);
}

Status Evaluator::EvalSlice(const Expr& e, Value* out) {
  Value obj, part[3];
  EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &obj));
  for (int i = 0; i < 3; ++i) {
    part[i] = Value::None();
    if (e.items[i + 1]) EMBER_RETURN_IF_ERROR(Eval(*e.items[i + 1], &part[i]));
    if (!part[i].is_none() && !part[i].is_int() && !part[i].is_bool())
      return RuntimeError(e.line, "slice indices must be integers or none");
  }
  if (obj.is_undefined()) {
    *out = obj;
    return Status::Ok();
  }
  ValueList items;
  if (obj.is_list()) {
    items = obj.list();
  } else if (obj.is_string()) {
    for (std::string& cp : SplitCodePoints(obj.str())) items.push_back(Value::String(std::move(cp)));
  } else {
    return RuntimeError(e.line, std::string("cannot slice a ") + KindName(obj));
  }
  // Python's slice.indices().
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t step = part[2].is_none() ? 1 : part[2].as_int();
  if (step == 0) return RuntimeError(e.line, "slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t i = v.as_int();
    if (i < 0) i += n;
    if (step > 0) return std::min<int64_t>(std::max<int64_t>(i, 0), n);
    return std::min<int64_t>(std::max<int64_t>(i, -1), n - 1);
  };
  int64_t start = clamp(part[0], step > 0 ? 0 : n - 1), stop = clamp(part[1], step > 0 ? n : -1);
  ValueList picked;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picked.push_back(items[static_cast<size_t>(i)]);
  if (obj.is_list()) {
    *out = Value::List(std::move(picked));
  } else {
    std::string s;
    for (const Value& v : picked) s += v.str();
    *out = Value::String(std::move(s));
  }
  return Status::Ok();
}

Status Evaluator::EvalArgs(const std::vector<Arg>& args, int line, CallArgs* out) {
  out->line = line;
  for (const Arg& a : args) {
    Value v;
    EMBER_RETURN_IF_ERROR(Eval(*a.value, &v));
    if (a.name.empty()) out->positional.push_back(std::move(v));
    else out->keyword.emplace_back(a.name, std::move(v));
  }
  return Status::Ok();
}

Status Evaluator::Call(const Value& callee, const std::string& what, const CallArgs& args, Value* out) {
  if (callee.is_undefined()) return RuntimeError(args.line, "'" + what + "' is undefined");
  if (!callee.is_callable()) return RuntimeError(args.line, "'" + what + "' (" + KindName(callee) + ") is not callable");
  const Callable& c = callee.callable();
  if (c.macro) return CallMacro(c, args, out);
  return c.builtin(args, out);
}

Status Evaluator::EvalCall(const Expr& e, Value* out) {
  const Expr& callee = *e.items[0];
  CallArgs args;
  if (callee.kind == Expr::Kind::kAttr) {  // obj.method(...)
    Value obj;
    EMBER_RETURN_IF_ERROR(Eval(*callee.items[0], &obj));
    EMBER_RETURN_IF_ERROR(EvalArgs(e.args, e.line, &args));
    bool handled = false;
    EMBER_RETURN_IF_ERROR(CallMethod(obj, callee.name, args, out, &handled));
    if (handled) return Status::Ok();
    if (obj.is_string() || obj.is_list() || obj.is_dict())
      return RuntimeError(e.line, std::string("the ") + KindName(obj) + " method '" + callee.name + "' is not supported",
                          true);
    return Call(obj.is_mapping() ? obj.Get(callee.name) : Value::Undefined(), callee.name, args, out);
  }
  Value fn;
  EMBER_RETURN_IF_ERROR(Eval(callee, &fn));
  EMBER_RETURN_IF_ERROR(EvalArgs(e.args, e.line, &args));
  return Call(fn, callee.kind == Expr::Kind::kName ? callee.name : std::string("expression"), args, out);
}

Status Evaluator::EvalFilter(const Expr& e, const Value* block_input, Value* out) {
  Value input;
  if (e.items[0]) {
    const Expr& in = *e.items[0];
    EMBER_RETURN_IF_ERROR(in.kind == Expr::Kind::kFilter ? EvalFilter(in, block_input, &input) : Eval(in, &input));
  } else if (block_input) {
    input = *block_input;
  }
  CallArgs args;
  EMBER_RETURN_IF_ERROR(EvalArgs(e.args, e.line, &args));
  return ApplyFilter(e.name, input, args, out);
}

Status Evaluator::EvalTest(const Expr& e, Value* out) {
  Value input;
  EMBER_RETURN_IF_ERROR(Eval(*e.items[0], &input));
  CallArgs args;
  EMBER_RETURN_IF_ERROR(EvalArgs(e.args, e.line, &args));
  bool result = false;
  EMBER_RETURN_IF_ERROR(ApplyTest(e.name, input, args, &result));
  *out = Value::Bool(result != e.negated);
  return Status::Ok();
}

namespace {

Status TypeError(const std::string& op, const Value& a, const Value& b, int line) {
  if (a.is_undefined()) return RuntimeError(line, "'" + a.str() + "' is undefined");
  if (b.is_undefined()) return RuntimeError(line, "'" + b.str() + "' is undefined");
  return RuntimeError(line, "unsupported operand types for " + op + ": " + KindName(a) + " and " + KindName(b));
}

Status Repeat(const Value& seq, int64_t times, int line, Value* out) {
  times = std::max<int64_t>(times, 0);
  size_t unit = seq.is_string() ? seq.str().size() : seq.list().size();
  size_t cap = seq.is_string() ? kMaxOutputBytes : kMaxListItems;
  if (unit && static_cast<uint64_t>(times) > cap / unit)
    return seq.is_string() ? CheckSize(cap + 1, line) : CheckItems(cap + 1, line);
  if (seq.is_string()) {
    std::string s;
    for (int64_t i = 0; i < times; ++i) s += seq.str();
    *out = Value::String(std::move(s));
  } else {
    ValueList l;
    for (int64_t i = 0; i < times; ++i) l.insert(l.end(), seq.list().begin(), seq.list().end());
    *out = Value::List(std::move(l));
  }
  return Status::Ok();
}

Status Concatenate(const Value& a, const Value& b, int line, Value* out) {
  if (a.is_string()) {
    EMBER_RETURN_IF_ERROR(CheckSize(a.str().size() + b.str().size(), line));
    *out = Value::String(a.str() + b.str());
    return Status::Ok();
  }
  EMBER_RETURN_IF_ERROR(CheckItems(a.list().size() + b.list().size(), line));
  ValueList l = a.list();
  l.insert(l.end(), b.list().begin(), b.list().end());
  *out = Value::List(std::move(l));
  return Status::Ok();
}

// + - * / // % ** on two numbers, Python's semantics (int unless a float is involved or
// the operator is /; floor division and modulo round toward negative infinity).
Status Arithmetic(const std::string& op, const Value& a, const Value& b, int line, Value* out) {
  const bool as_float = a.is_float() || b.is_float() || op == "/";
  if ((op == "/" || op == "//" || op == "%") && b.as_float() == 0) return RuntimeError(line, "division by zero");
  if (as_float) {
    double x = a.as_float(), y = b.as_float(), r = 0;
    if (op == "+") r = x + y;
    else if (op == "-") r = x - y;
    else if (op == "*") r = x * y;
    else if (op == "/") r = x / y;
    else if (op == "//") r = std::floor(x / y);
    else if (op == "%") r = x - std::floor(x / y) * y;
    else r = std::pow(x, y);
    *out = Value::Float(r);
    return Status::Ok();
  }
  int64_t x = a.as_int(), y = b.as_int(), r = 0;
  bool overflow = false;
  if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
  else if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
  else if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
  else if (op == "//" || op == "%") {
    if (x == INT64_MIN && y == -1) {
      overflow = true;
    } else {
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      r = op == "//" ? q : m;
    }
  } else {  // **
    if (y < 0) {
      *out = Value::Float(std::pow(static_cast<double>(x), static_cast<double>(y)));
      return Status::Ok();
    }
    r = 1;  // by squaring: O(log y) steps whatever y is
    for (int64_t base = x, e = y; e > 0 && !overflow; e >>= 1) {
      if (e & 1) overflow = __builtin_mul_overflow(r, base, &r);
      if (e > 1 && !overflow) overflow = __builtin_mul_overflow(base, base, &base);
    }
  }
  if (overflow) return RuntimeError(line, "integer overflow in '" + op + "'");
  *out = Value::Int(r);
  return Status::Ok();
}

Status Contains(const Value& item, const Value& container, int line, bool* out) {
  *out = false;
  if (container.is_string()) {
    if (!item.is_string()) return RuntimeError(line, std::string("'in <string>' needs a string, not ") + KindName(item));
    *out = container.str().find(item.str()) != std::string::npos;
  } else if (container.is_list()) {
    for (const Value& v : container.list())
      if (Equal(v, item)) *out = true;
  } else if (container.is_mapping()) {
    *out = item.is_string() && container.dict().Find(item.str());
  } else if (!container.is_undefined()) {
    return RuntimeError(line, std::string("'in' needs a string, list or dict, not ") + KindName(container));
  }
  return Status::Ok();
}

}  // namespace

Status BinaryOp(const std::string& op, const Value& a, const Value& b, int line, Value* out) {
  if (op == "~") {
    std::string s = ToString(a) + ToString(b);
    EMBER_RETURN_IF_ERROR(CheckSize(s.size(), line));
    *out = Value::String(std::move(s));
    return Status::Ok();
  }
  if (op == "==" || op == "!=") {
    *out = Value::Bool(Equal(a, b) == (op == "=="));
    return Status::Ok();
  }
  if (op == "in" || op == "notin") {
    bool in = false;
    EMBER_RETURN_IF_ERROR(Contains(a, b, line, &in));
    *out = Value::Bool(in == (op == "in"));
    return Status::Ok();
  }
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    bool comparable = true;
    bool r = op[0] == '<' ? Less(a, b, &comparable) : Less(b, a, &comparable);
    if (comparable && op.size() == 2) r = r || Equal(a, b);
    if (!comparable) return TypeError(op, a, b, line);
    *out = Value::Bool(r);
    return Status::Ok();
  }
  if (a.is_number() && b.is_number()) return Arithmetic(op, a, b, line, out);
  if (op == "+" && ((a.is_string() && b.is_string()) || (a.is_list() && b.is_list())))
    return Concatenate(a, b, line, out);
  if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return Repeat(a, b.as_int(), line, out);
  if (op == "*" && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return Repeat(b, a.as_int(), line, out);
  if (op == "%" && a.is_string())
    return RuntimeError(line, "printf-style string formatting ('%') is not supported", true);
  return TypeError(op, a, b, line);
}

}  // namespace ember::jinja
