// Values of the Jinja interpreter: construction, truth, Python's str()/repr(), JSON,
// equality and ordering (jinja_value.h).
#include "tokenizer/chat/jinja_value.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/json.h"

namespace ember::jinja {

const Value* ValueDict::Find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void ValueDict::Set(std::string key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(std::move(key), std::move(v));
}

namespace {
thread_local uint64_t t_string_bytes = 0;
}

uint64_t StringBytesMade() { return t_string_bytes; }

const std::string& Value::str() const {
  static const std::string kEmpty;
  return s_ ? *s_ : kEmpty;
}

Value Value::Undefined(std::string name) {
  Value v;
  if (!name.empty()) v.s_ = std::make_shared<const std::string>(std::move(name));
  return v;
}
Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::Float(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  t_string_bytes += s.size();
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::List(ValueList items) {
  Value v;
  v.kind_ = Kind::kList;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}
Value Value::Dict(ValueDict d) {
  Value v;
  v.kind_ = Kind::kDict;
  v.dict_ = std::make_shared<ValueDict>(std::move(d));
  return v;
}
Value Value::Namespace(ValueDict d) {
  Value v = Dict(std::move(d));
  v.kind_ = Kind::kNamespace;
  return v;
}
Value Value::Function(std::shared_ptr<const Callable> c) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::move(c);
  return v;
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone: return false;
    case Kind::kBool: return b_;
    case Kind::kInt: return i_ != 0;
    case Kind::kFloat: return f_ != 0;
    case Kind::kString: return !str().empty();
    case Kind::kList: return !list_->empty();
    case Kind::kDict: return !dict_->items.empty();
    case Kind::kNamespace:
    case Kind::kCallable: return true;
  }
  return false;
}

Value Value::Get(std::string_view key) const {
  if (is_mapping())
    if (const Value* v = dict_->Find(key)) return *v;
  return Undefined(std::string(key));
}

std::string FloatRepr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, then laid out as Python's repr does:
  // positional for exponents -4..15, else d.ddde+XX.
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  int exp = std::stoi(sci.substr(e + 1));
  bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out = neg ? "-" : "";
  if (exp >= 16 || exp < -4) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out.append(".").append(digits, 1, std::string::npos);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    return out + eb;
  }
  if (exp < 0) return out.append("0.").append(static_cast<size_t>(-exp - 1), '0').append(digits);
  size_t int_len = static_cast<size_t>(exp) + 1;
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0') + ".0";
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

namespace {

std::string QuotePython(const std::string& s) {
  // repr(str): single quotes unless the text holds a ' and no ".
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == static_cast<unsigned char>(q) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + q;
}

std::string ReprContainer(const Value& v) {
  std::string out;
  if (v.is_list()) {
    out = "[";
    for (size_t i = 0; i < v.list().size() && out.size() <= kMaxReprBytes; ++i)
      out += (i ? ", " : "") + Repr(v.list()[i]);
    return out + "]";
  }
  out = v.is_namespace() ? "<Namespace {" : "{";
  bool first = true;
  for (const auto& [k, item] : v.dict().items) {
    if (out.size() > kMaxReprBytes) break;
    out += (first ? "" : ", ") + QuotePython(k) + ": " + Repr(item);
    first = false;
  }
  return out + (v.is_namespace() ? "}>" : "}");
}

}  // namespace

std::string Repr(const Value& v) {
  if (v.is_string()) return QuotePython(v.str());
  if (v.is_undefined()) return "";
  return ToString(v);
}

std::string ToString(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "";
    case Value::Kind::kNone: return "None";
    case Value::Kind::kBool: return v.as_bool() ? "True" : "False";
    case Value::Kind::kInt: return std::to_string(v.as_int());
    case Value::Kind::kFloat: return FloatRepr(v.as_float());
    case Value::Kind::kString: return v.str();
    case Value::Kind::kList:
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: return ReprContainer(v);
    case Value::Kind::kCallable: return "<function>";
  }
  return "";
}

namespace {

void Newline(int indent, int depth, std::string* out) {
  out->push_back('\n');
  out->append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

Status JsonInto(const Value& v, int indent, int depth, std::string* out) {
  if (depth > 64) return InvalidArgument("tojson: nesting deeper than 64");
  switch (v.kind()) {
    case Value::Kind::kNone: *out += "null"; return Status::Ok();
    case Value::Kind::kBool: *out += v.as_bool() ? "true" : "false"; return Status::Ok();
    case Value::Kind::kInt: *out += std::to_string(v.as_int()); return Status::Ok();
    case Value::Kind::kFloat: {
      double f = v.as_float();
      *out += std::isnan(f) ? "NaN" : std::isinf(f) ? (f > 0 ? "Infinity" : "-Infinity") : FloatRepr(f);
      return Status::Ok();
    }
    case Value::Kind::kString: *out += JsonQuote(v.str()); return Status::Ok();
    case Value::Kind::kUndefined: return InvalidArgument("tojson: the value is undefined");
    case Value::Kind::kCallable: return InvalidArgument("tojson: a function is not JSON serializable");
    default: break;
  }
  const bool is_list = v.is_list();
  const size_t n = is_list ? v.list().size() : v.dict().items.size();
  out->push_back(is_list ? '[' : '{');
  for (size_t i = 0; i < n; ++i) {
    if (out->size() > kMaxReprBytes) return Status(Code::kOutOfRange, "tojson: the text exceeds 16777216 bytes");
    if (i) *out += indent >= 0 ? "," : ", ";
    if (indent >= 0) Newline(indent, depth + 1, out);
    if (!is_list) *out += JsonQuote(v.dict().items[i].first) + ": ";
    EMBER_RETURN_IF_ERROR(JsonInto(is_list ? v.list()[i] : v.dict().items[i].second, indent, depth + 1, out));
  }
  if (indent >= 0 && n) Newline(indent, depth, out);
  out->push_back(is_list ? ']' : '}');
  return Status::Ok();
}

}  // namespace

Status ToJson(const Value& v, int indent, std::string* out) {
  out->clear();
  return JsonInto(v, indent, 0, out);
}

bool Equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone: return true;
    case Value::Kind::kString: return a.str() == b.str();
    case Value::Kind::kList: {
      if (a.list().size() != b.list().size()) return false;
      for (size_t i = 0; i < a.list().size(); ++i)
        if (!Equal(a.list()[i], b.list()[i])) return false;
      return true;
    }
    case Value::Kind::kDict: {
      if (a.dict().items.size() != b.dict().items.size()) return false;
      for (const auto& [k, v] : a.dict().items) {
        const Value* other = b.dict().Find(k);
        if (!other || !Equal(v, *other)) return false;
      }
      return true;
    }
    case Value::Kind::kNamespace: return &a.dict() == &b.dict();  // identity
    case Value::Kind::kCallable: return &a.callable() == &b.callable();
    default: return false;
  }
}

bool Less(const Value& a, const Value& b, bool* comparable) {
  *comparable = true;
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.as_float() < b.as_float();
    return a.as_int() < b.as_int();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list()) {
    const ValueList &x = a.list(), &y = b.list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (Equal(x[i], y[i])) continue;
      return Less(x[i], y[i], comparable);
    }
    return x.size() < y.size();
  }
  *comparable = false;
  return false;
}

const char* KindName(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return "undefined";
    case Value::Kind::kNone: return "none";
    case Value::Kind::kBool: return "boolean";
    case Value::Kind::kInt: return "integer";
    case Value::Kind::kFloat: return "float";
    case Value::Kind::kString: return "string";
    case Value::Kind::kList: return "list";
    case Value::Kind::kDict: return "dict";
    case Value::Kind::kNamespace: return "namespace";
    case Value::Kind::kCallable: return "function";
  }
  return "?";
}

std::vector<std::string> SplitCodePoints(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

int64_t Length(const Value& v) {
  if (v.is_string()) {
    int64_t n = 0;
    for (unsigned char c : v.str()) n += (c & 0xC0) != 0x80;
    return n;
  }
  if (v.is_list()) return static_cast<int64_t>(v.list().size());
  if (v.is_mapping()) return static_cast<int64_t>(v.dict().items.size());
  if (v.is_undefined()) return 0;
  return -1;
}

}  // namespace ember::jinja
