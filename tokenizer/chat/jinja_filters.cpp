// Filters, tests and methods of the Jinja interpreter (jinja_eval.h), one small function
// each, found by name in a table.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "tokenizer/chat/jinja_eval.h"
#include "tokenizer/chat/jinja_evaluator.h"
#include "tokenizer/chat/jinja_strings.h"

namespace ember::jinja {
namespace {

using FilterFn = Status (*)(const Value& in, const CallArgs& a, Value* out);
using TestFn = bool (*)(const Value& in, const CallArgs& a);

Status Fail(const CallArgs& a, const std::string& what) { return RuntimeError(a.line, what); }

// The string the filter works on: str(value), "" for undefined (Jinja2's soft_str).
std::string Text(const Value& v) { return ToString(v); }

const std::string* OptString(const CallArgs& a, size_t i, const char* name) {
  const Value* v = a.Get(i, name);
  return v && v->is_string() ? &v->str() : nullptr;
}

int64_t OptInt(const CallArgs& a, size_t i, const char* name, int64_t dflt) {
  const Value* v = a.Get(i, name);
  return v && (v->is_int() || v->is_bool()) ? v->as_int() : dflt;
}

// item.attr for a dotted attribute path ("function.name"); integer parts index lists.
Value Attribute(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    v = numeric && v.is_list() ? Subscript(v, Value::Int(std::atoll(part.c_str()))) : Subscript(v, Value::String(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return v;
}

Status FTrim(const Value& in, const CallArgs& a, Value* out) {
  *out = Value::String(PyStrip(Text(in), OptString(a, 0, "chars"), StripSide::kBoth));
  return Status::Ok();
}

Status FLength(const Value& in, const CallArgs& a, Value* out) {
  int64_t n = Length(in);
  if (n < 0) return Fail(a, std::string("object of type ") + KindName(in) + " has no length");
  *out = Value::Int(n);
  return Status::Ok();
}

Status FToJson(const Value& in, const CallArgs& a, Value* out) {
  const Value* indent = a.Get(0, "indent");
  std::string s;
  Status st = ToJson(in, indent && indent->is_int() ? static_cast<int>(std::min<int64_t>(indent->as_int(), 64)) : -1, &s);
  if (!st.ok()) return Status(st.code(), "chat template: line " + std::to_string(a.line) + ": " + st.message());
  EMBER_RETURN_IF_ERROR(CheckSize(s.size(), a.line));
  *out = Value::String(std::move(s));
  return Status::Ok();
}

Status FItems(const Value& in, const CallArgs& a, Value* out) {
  ValueList pairs;
  if (in.is_mapping()) {
    for (const auto& [k, v] : in.dict().items) pairs.push_back(Value::List({Value::String(k), v}));
  } else if (!in.is_undefined()) {
    return Fail(a, std::string("items: a mapping is needed, not ") + KindName(in));
  }
  *out = Value::List(std::move(pairs));
  return Status::Ok();
}

Status FUpper(const Value& in, const CallArgs&, Value* out) {
  *out = Value::String(PyUpper(Text(in)));
  return Status::Ok();
}
Status FLower(const Value& in, const CallArgs&, Value* out) {
  *out = Value::String(PyLower(Text(in)));
  return Status::Ok();
}
Status FCapitalize(const Value& in, const CallArgs&, Value* out) {
  *out = Value::String(PyCapitalize(Text(in)));
  return Status::Ok();
}
Status FTitle(const Value& in, const CallArgs&, Value* out) {
  *out = Value::String(JinjaTitle(Text(in)));
  return Status::Ok();
}
Status FString(const Value& in, const CallArgs&, Value* out) {
  *out = Value::String(Text(in));
  return Status::Ok();
}
Status FSafe(const Value& in, const CallArgs&, Value* out) {
  *out = in;
  return Status::Ok();
}

Status FDefault(const Value& in, const CallArgs& a, Value* out) {
  const Value* dflt = a.Get(0, "default_value");
  const Value* boolean = a.Get(1, "boolean");
  bool use_default = in.is_undefined() || (boolean && boolean->Truthy() && !in.Truthy());
  *out = use_default ? (dflt ? *dflt : Value::String("")) : in;
  return Status::Ok();
}

Status FJoin(const Value& in, const CallArgs& a, Value* out) {
  const std::string* sep = OptString(a, 0, "d");
  const std::string* attr = OptString(a, 1, "attribute");
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i && sep) s += *sep;
    s += Text(attr ? Attribute(items[i], *attr) : items[i]);
    EMBER_RETURN_IF_ERROR(CheckSize(s.size(), a.line));
  }
  *out = Value::String(std::move(s));
  return Status::Ok();
}

Status FFirst(const Value& in, const CallArgs& a, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  *out = items.empty() ? Value::Undefined() : items.front();
  return Status::Ok();
}
Status FLast(const Value& in, const CallArgs& a, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  *out = items.empty() ? Value::Undefined() : items.back();
  return Status::Ok();
}
Status FList(const Value& in, const CallArgs& a, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  *out = Value::List(std::move(items));
  return Status::Ok();
}
Status FReverse(const Value& in, const CallArgs& a, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  std::reverse(items.begin(), items.end());
  if (!in.is_string()) {
    *out = Value::List(std::move(items));
    return Status::Ok();
  }
  std::string s;
  for (const Value& v : items) s += v.str();
  *out = Value::String(std::move(s));
  return Status::Ok();
}

Status FInt(const Value& in, const CallArgs& a, Value* out) {
  const Value* dflt = a.Get(0, "default");
  *out = dflt ? *dflt : Value::Int(0);
  if (in.is_number()) {
    *out = Value::Int(in.is_float() ? static_cast<int64_t>(std::trunc(in.as_float())) : in.as_int());
  } else if (in.is_string()) {
    std::string s = PyStrip(in.str(), nullptr, StripSide::kBoth);
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == 0) {
      *out = Value::Int(i);
    } else {
      double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && *end == 0 && std::isfinite(f)) *out = Value::Int(static_cast<int64_t>(std::trunc(f)));
    }
  }
  return Status::Ok();
}

Status FFloat(const Value& in, const CallArgs& a, Value* out) {
  const Value* dflt = a.Get(0, "default");
  *out = dflt ? *dflt : Value::Float(0);
  if (in.is_number()) {
    *out = Value::Float(in.as_float());
  } else if (in.is_string()) {
    std::string s = PyStrip(in.str(), nullptr, StripSide::kBoth);
    char* end = nullptr;
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == 0) *out = Value::Float(f);
  }
  return Status::Ok();
}

Status FReplace(const Value& in, const CallArgs& a, Value* out) {
  const std::string* old = OptString(a, 0, "old");
  const std::string* repl = OptString(a, 1, "new");
  if (!old || !repl) return Fail(a, "replace: needs two strings (old, new)");
  const std::string text = Text(in);
  const int64_t count = OptInt(a, 2, "count", -1);
  // The result's size before building it: a small text can make a huge one.
  uint64_t hits = old->empty() ? static_cast<uint64_t>(Length(Value::String(text))) + 1 : 0;
  for (size_t at = text.find(*old); !old->empty() && at != std::string::npos; at = text.find(*old, at + old->size()))
    ++hits;
  if (count >= 0) hits = std::min<uint64_t>(hits, static_cast<uint64_t>(count));
  if (repl->size() > old->size() && hits > kMaxOutputBytes / (repl->size() - old->size()))
    return CheckSize(kMaxOutputBytes + 1, a.line);
  std::string s = PyReplace(text, *old, *repl, count);
  EMBER_RETURN_IF_ERROR(CheckSize(s.size(), a.line));
  *out = Value::String(std::move(s));
  return Status::Ok();
}

Status FAbs(const Value& in, const CallArgs& a, Value* out) {
  if (!in.is_number()) return Fail(a, std::string("abs: a number is needed, not ") + KindName(in));
  *out = in.is_float() ? Value::Float(std::fabs(in.as_float())) : Value::Int(std::llabs(in.as_int()));
  return Status::Ok();
}

Status FRound(const Value& in, const CallArgs& a, Value* out) {
  if (!in.is_number()) return Fail(a, std::string("round: a number is needed, not ") + KindName(in));
  const double scale = std::pow(10.0, static_cast<double>(OptInt(a, 0, "precision", 0)));
  const std::string* method = OptString(a, 1, "method");
  double x = in.as_float() * scale;
  double r = !method || *method == "common" ? std::round(x) : *method == "ceil" ? std::ceil(x) : std::floor(x);
  *out = Value::Float(r / scale);
  return Status::Ok();
}

Status FIndent(const Value& in, const CallArgs& a, Value* out) {
  const Value* width = a.Get(0, "width");
  const int64_t n = std::clamp<int64_t>(OptInt(a, 0, "width", 4), 0, 256);
  std::string pad = width && width->is_string() ? width->str() : std::string(static_cast<size_t>(n), ' ');
  const Value* first = a.Get(1, "first");
  const Value* blank = a.Get(2, "blank");
  const std::string newline = "\n";
  std::vector<std::string> lines = PySplit(PyReplace(Text(in), "\r\n", "\n", -1), &newline, -1);
  std::string s;
  for (size_t i = 0; i < lines.size(); ++i) {
    EMBER_RETURN_IF_ERROR(CheckSize(s.size() + pad.size() + lines[i].size(), a.line));
    if (i) s += '\n';
    if (i && (!lines[i].empty() || (blank && blank->Truthy()))) s += pad;
    s += lines[i];
  }
  if (first && first->Truthy()) s = pad + s;
  *out = Value::String(std::move(s));
  return Status::Ok();
}

// select / reject (attr == nullptr) and selectattr / rejectattr: the items whose value
// (or attribute) passes the test named by the next argument (truthiness without one).
Status FilterByTest(const Value& in, const CallArgs& a, bool attr_form, bool keep_passing, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  size_t next = 0;
  const std::string* attr = nullptr;
  if (attr_form) {
    attr = OptString(a, next++, "attribute");
    if (!attr) return Fail(a, "selectattr / rejectattr: needs an attribute name");
  }
  const std::string* test = OptString(a, next++, "test");
  CallArgs test_args;
  test_args.line = a.line;
  for (size_t i = next; i < a.positional.size(); ++i) test_args.positional.push_back(a.positional[i]);
  ValueList kept;
  for (Value& item : items) {
    Value probe = attr ? Attribute(item, *attr) : item;
    bool pass = probe.Truthy();
    if (test) EMBER_RETURN_IF_ERROR(ApplyTest(*test, probe, test_args, &pass));
    if (pass == keep_passing) kept.push_back(std::move(item));
  }
  *out = Value::List(std::move(kept));
  return Status::Ok();
}

Status FSelect(const Value& in, const CallArgs& a, Value* out) { return FilterByTest(in, a, false, true, out); }
Status FReject(const Value& in, const CallArgs& a, Value* out) { return FilterByTest(in, a, false, false, out); }
Status FSelectAttr(const Value& in, const CallArgs& a, Value* out) { return FilterByTest(in, a, true, true, out); }
Status FRejectAttr(const Value& in, const CallArgs& a, Value* out) { return FilterByTest(in, a, true, false, out); }

// map(attribute="x", default=...) or map("filter", args...).
Status FMap(const Value& in, const CallArgs& a, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  const Value* attr = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, v] : a.keyword) {
    if (k == "attribute") attr = &v;
    if (k == "default") dflt = &v;
  }
  CallArgs filter_args;
  filter_args.line = a.line;
  for (size_t i = 1; i < a.positional.size(); ++i) filter_args.positional.push_back(a.positional[i]);
  if (!attr && (a.positional.empty() || !a.positional[0].is_string()))
    return Fail(a, "map: needs attribute=NAME or a filter name");
  for (Value& item : items) {
    if (attr) {
      item = Attribute(item, ToString(*attr));
      if (item.is_undefined() && dflt) item = *dflt;
    } else {
      Value mapped;
      EMBER_RETURN_IF_ERROR(ApplyFilter(a.positional[0].str(), item, filter_args, &mapped));
      item = std::move(mapped);
    }
  }
  *out = Value::List(std::move(items));
  return Status::Ok();
}

Status FSum(const Value& in, const CallArgs& a, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  const std::string* attr = OptString(a, 0, "attribute");
  Value total = a.Get(1, "start") ? *a.Get(1, "start") : Value::Int(0);
  for (const Value& item : items)
    EMBER_RETURN_IF_ERROR(BinaryOp("+", total, attr ? Attribute(item, *attr) : item, a.line, &total));
  *out = total;
  return Status::Ok();
}

Status MinMax(const Value& in, const CallArgs& a, bool want_max, Value* out) {
  ValueList items;
  EMBER_RETURN_IF_ERROR(Iterate(in, a.line, &items));
  *out = Value::Undefined();
  for (const Value& item : items) {
    bool comparable = true;
    if (out->is_undefined() || Less(want_max ? *out : item, want_max ? item : *out, &comparable)) *out = item;
    if (!comparable) return Fail(a, "min / max: items that cannot be compared");
  }
  return Status::Ok();
}
Status FMin(const Value& in, const CallArgs& a, Value* out) { return MinMax(in, a, false, out); }
Status FMax(const Value& in, const CallArgs& a, Value* out) { return MinMax(in, a, true, out); }

const std::map<std::string, FilterFn>& Filters() {
  static const std::map<std::string, FilterFn> kFilters = {
      {"trim", FTrim},       {"length", FLength},       {"count", FLength},     {"tojson", FToJson},
      {"items", FItems},     {"upper", FUpper},         {"lower", FLower},      {"capitalize", FCapitalize},
      {"title", FTitle},     {"default", FDefault},     {"d", FDefault},        {"join", FJoin},
      {"first", FFirst},     {"last", FLast},           {"list", FList},        {"string", FString},
      {"int", FInt},         {"float", FFloat},         {"replace", FReplace},  {"selectattr", FSelectAttr},
      {"rejectattr", FRejectAttr}, {"select", FSelect}, {"reject", FReject},    {"map", FMap},
      {"abs", FAbs},         {"round", FRound},         {"reverse", FReverse},  {"safe", FSafe},
      {"indent", FIndent},   {"sum", FSum},             {"min", FMin},          {"max", FMax},
  };
  return kFilters;
}

// ---- tests ----

const Value& Arg0(const CallArgs& a) {
  static const Value kUndefined;
  return a.positional.empty() ? kUndefined : a.positional[0];
}
bool Compare(const char* op, const Value& in, const CallArgs& a) {
  Value r;
  return BinaryOp(op, in, Arg0(a), a.line, &r).ok() && r.Truthy();
}

const std::map<std::string, TestFn>& Tests() {
  static const std::map<std::string, TestFn> kTests = {
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"integer", [](const Value& v, const CallArgs&) { return v.is_int(); }},
      {"float", [](const Value& v, const CallArgs&) { return v.is_float(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
      {"iterable", [](const Value& v, const CallArgs&) {
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"sequence", [](const Value& v, const CallArgs&) { return v.is_string() || v.is_list() || v.is_dict(); }},
      {"callable", [](const Value& v, const CallArgs&) { return v.is_callable(); }},
      {"odd", [](const Value& v, const CallArgs&) { return v.is_int() && v.as_int() % 2 != 0; }},
      {"even", [](const Value& v, const CallArgs&) { return v.is_int() && v.as_int() % 2 == 0; }},
      {"divisibleby", [](const Value& v, const CallArgs& a) {
         return v.is_int() && Arg0(a).is_int() && Arg0(a).as_int() != 0 && v.as_int() % Arg0(a).as_int() == 0;
       }},
      {"lower", [](const Value& v, const CallArgs&) { return v.is_string() && PyLower(v.str()) == v.str(); }},
      {"upper", [](const Value& v, const CallArgs&) { return v.is_string() && PyUpper(v.str()) == v.str(); }},
      {"eq", [](const Value& v, const CallArgs& a) { return Equal(v, Arg0(a)); }},
      {"equalto", [](const Value& v, const CallArgs& a) { return Equal(v, Arg0(a)); }},
      {"==", [](const Value& v, const CallArgs& a) { return Equal(v, Arg0(a)); }},
      {"sameas", [](const Value& v, const CallArgs& a) { return Equal(v, Arg0(a)) && v.kind() == Arg0(a).kind(); }},
      {"ne", [](const Value& v, const CallArgs& a) { return !Equal(v, Arg0(a)); }},
      {"!=", [](const Value& v, const CallArgs& a) { return !Equal(v, Arg0(a)); }},
      {"lt", [](const Value& v, const CallArgs& a) { return Compare("<", v, a); }},
      {"le", [](const Value& v, const CallArgs& a) { return Compare("<=", v, a); }},
      {"gt", [](const Value& v, const CallArgs& a) { return Compare(">", v, a); }},
      {"ge", [](const Value& v, const CallArgs& a) { return Compare(">=", v, a); }},
      {"in", [](const Value& v, const CallArgs& a) { return Compare("in", v, a); }},
  };
  return kTests;
}

// ---- methods ----

Status StringMethod(const std::string& s, const std::string& name, const CallArgs& a, Value* out, bool* handled) {
  *handled = true;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    StripSide side = name == "strip" ? StripSide::kBoth : name == "lstrip" ? StripSide::kLeft : StripSide::kRight;
    *out = Value::String(PyStrip(s, OptString(a, 0, "chars"), side));
  } else if (name == "startswith" || name == "endswith") {
    const Value& arg = Arg0(a);
    ValueList options = arg.is_list() ? arg.list() : ValueList{arg};
    bool hit = false;
    for (const Value& o : options) {
      if (!o.is_string()) return Fail(a, name + ": needs a string or a tuple of strings");
      const std::string& p = o.str();
      hit = hit || (p.size() <= s.size() &&
                    s.compare(name == "startswith" ? 0 : s.size() - p.size(), p.size(), p) == 0);
    }
    *out = Value::Bool(hit);
  } else if (name == "split") {
    ValueList parts;
    for (std::string& p : PySplit(s, OptString(a, 0, "sep"), OptInt(a, 1, "maxsplit", -1)))
      parts.push_back(Value::String(std::move(p)));
    *out = Value::List(std::move(parts));
  } else if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    *out = Value::String(name == "upper"   ? PyUpper(s)
                         : name == "lower" ? PyLower(s)
                         : name == "title" ? PyTitle(s)
                                           : PyCapitalize(s));
  } else if (name == "replace") {
    return FReplace(Value::String(s), a, out);
  } else if (name == "find") {
    const std::string* sub = OptString(a, 0, "sub");
    if (!sub) return Fail(a, "find: needs a string");
    *out = Value::Int(PyFind(s, *sub));
  } else {
    *handled = false;
  }
  return Status::Ok();
}

Status DictMethod(const Value& d, const std::string& name, const CallArgs& a, Value* out, bool* handled) {
  *handled = true;
  if (name == "get") {
    const Value& key = Arg0(a);
    const Value* dflt = a.Get(1, "default");
    Value v = Subscript(d, key);
    *out = v.is_undefined() ? (dflt ? *dflt : Value::None()) : v;
  } else if (name == "items") {
    return FItems(d, a, out);
  } else if (name == "keys" || name == "values") {
    ValueList l;
    for (const auto& [k, v] : d.dict().items) l.push_back(name == "keys" ? Value::String(k) : v);
    *out = Value::List(std::move(l));
  } else {
    *handled = false;
  }
  return Status::Ok();
}

}  // namespace

bool IsKnownFilter(const std::string& name) { return Filters().count(name) != 0; }
bool IsKnownTest(const std::string& name) { return Tests().count(name) != 0; }

Status ApplyFilter(const std::string& name, const Value& input, const CallArgs& args, Value* out) {
  auto it = Filters().find(name);
  if (it == Filters().end()) return RuntimeError(args.line, "the filter '" + name + "' is not supported", true);
  return it->second(input, args, out);
}

Status ApplyTest(const std::string& name, const Value& input, const CallArgs& args, bool* out) {
  auto it = Tests().find(name);
  if (it == Tests().end()) return RuntimeError(args.line, "the test '" + name + "' is not supported", true);
  *out = it->second(input, args);
  return Status::Ok();
}

Status CallMethod(const Value& obj, const std::string& name, const CallArgs& args, Value* out, bool* handled) {
  *handled = false;
  if (obj.is_string()) return StringMethod(obj.str(), name, args, out, handled);
  if (obj.is_dict()) return DictMethod(obj, name, args, out, handled);
  return Status::Ok();
}

}  // namespace ember::jinja
