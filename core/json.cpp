#include "core/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ember {

JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  return v;
}
JsonValue JsonValue::Number(double d) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.num_ = d;
  return v;
}
JsonValue JsonValue::Int(int64_t i) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.num_ = static_cast<double>(i);
  v.int_ = i;
  v.is_int_ = true;
  return v;
}
JsonValue JsonValue::String(std::string s) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.str_ = std::move(s);
  return v;
}
JsonValue JsonValue::Array() {
  JsonValue v;
  v.kind_ = Kind::kArray;
  return v;
}
JsonValue JsonValue::Object() {
  JsonValue v;
  v.kind_ = Kind::kObject;
  return v;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  for (const auto& [k, v] : obj_)
    if (k == key) return &v;
  return nullptr;
}

void JsonValue::Set(std::string key, JsonValue v) {
  for (auto& [k, old] : obj_)
    if (k == key) {
      old = std::move(v);
      return;
    }
  obj_.emplace_back(std::move(key), std::move(v));
}

bool JsonValue::operator==(const JsonValue& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case Kind::kNull: return true;
    case Kind::kBool: return b_ == o.b_;
    case Kind::kNumber: return is_int_ && o.is_int_ ? int_ == o.int_ : num_ == o.num_;
    case Kind::kString: return str_ == o.str_;
    case Kind::kArray: return arr_ == o.arr_;
    case Kind::kObject:
      if (obj_.size() != o.obj_.size()) return false;
      for (const auto& [k, v] : obj_) {
        const JsonValue* w = o.Find(k);
        if (!w || !(v == *w)) return false;
      }
      return true;
  }
  return false;
}

// ---- reader ----------------------------------------------------------------------

namespace {

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when invalid:
// overlong forms, surrogates and code points above U+10FFFF are rejected.
size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

class JsonParser {
 public:
  JsonParser(std::string_view text, const JsonParseOptions& o) : s_(text), opt_(o) {}

  Status Run(JsonValue* out) {
    JsonValue v;
    SkipWs();
    if (!Value(&v, 0)) return error_;
    SkipWs();
    if (pos_ != s_.size()) {
      Fail(pos_, "unexpected data after the JSON value");
      return error_;
    }
    *out = std::move(v);
    return Status::Ok();
  }

 private:
  bool Fail(size_t at, const std::string& what) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string src = opt_.source.empty() ? std::string("JSON") : std::string(opt_.source);
    error_ = BadFormat(src + ": offset " + std::to_string(at) + " (line " + std::to_string(line) +
                       ", column " + std::to_string(col) + "): " + what);
    return false;
  }

  void SkipWs() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail(pos_, "invalid literal (expected " + std::string(word) + ")");
    pos_ += word.size();
    return true;
  }

  bool Value(JsonValue* out, int depth) {
    if (pos_ >= s_.size()) return Fail(pos_, "unexpected end of input, expected a value");
    const char c = s_[pos_];
    switch (c) {
      case '{': return ObjectValue(out, depth + 1);
      case '[': return ArrayValue(out, depth + 1);
      case '"':
        out->kind_ = JsonValue::Kind::kString;
        return StringValue(&out->str_);
      case 't':
        *out = JsonValue::Bool(true);
        return Literal("true");
      case 'f':
        *out = JsonValue::Bool(false);
        return Literal("false");
      case 'n':
        *out = JsonValue();
        return Literal("null");
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return NumberValue(out);
        return Fail(pos_, std::string("unexpected character ") + Describe(c) + ", expected a value");
    }
  }

  static std::string Describe(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) return std::string("'") + c + "'";
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02X", u);
    return buf;
  }

  bool ObjectValue(JsonValue* out, int depth) {
    if (depth > opt_.max_depth) return Fail(pos_, "nesting deeper than " + std::to_string(opt_.max_depth));
    *out = JsonValue::Object();
    ++pos_;  // '{'
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail(pos_, "expected a string key in an object");
      const size_t key_at = pos_;
      std::string key;
      if (!StringValue(&key)) return false;
      if (out->Find(key)) return Fail(key_at, "duplicate key \"" + key + "\"");
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Fail(pos_, "expected ':' after an object key");
      ++pos_;
      SkipWs();
      JsonValue v;
      if (!Value(&v, depth)) return false;
      out->obj_.emplace_back(std::move(key), std::move(v));
      SkipWs();
      if (pos_ >= s_.size()) return Fail(pos_, "unexpected end of input in an object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return Fail(pos_, "expected ',' or '}' in an object");
    }
  }

  bool ArrayValue(JsonValue* out, int depth) {
    if (depth > opt_.max_depth) return Fail(pos_, "nesting deeper than " + std::to_string(opt_.max_depth));
    *out = JsonValue::Array();
    ++pos_;  // '['
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipWs();
      JsonValue v;
      if (!Value(&v, depth)) return false;
      out->arr_.push_back(std::move(v));
      SkipWs();
      if (pos_ >= s_.size()) return Fail(pos_, "unexpected end of input in an array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return Fail(pos_, "expected ',' or ']' in an array");
    }
  }

  bool Hex4(size_t at, uint32_t* out) {
    if (at + 4 > s_.size()) return Fail(at, "truncated \\u escape");
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char h = s_[at + k];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return Fail(at + k, "invalid hex digit in a \\u escape");
    }
    *out = v;
    return true;
  }

  bool StringValue(std::string* out) {
    const size_t start = pos_;
    ++pos_;  // '"'
    out->clear();
    for (;;) {
      if (pos_ >= s_.size()) return Fail(start, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return Fail(pos_, "raw control character " + Describe(static_cast<char>(c)) + " in a string");
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) return Fail(start, "unterminated string");
        const char e = s_[pos_ + 1];
        switch (e) {
          case '"': out->push_back('"'); break;
          case '\\': out->push_back('\\'); break;
          case '/': out->push_back('/'); break;
          case 'b': out->push_back('\b'); break;
          case 'f': out->push_back('\f'); break;
          case 'n': out->push_back('\n'); break;
          case 'r': out->push_back('\r'); break;
          case 't': out->push_back('\t'); break;
          case 'u': {
            uint32_t cp = 0;
            if (!Hex4(pos_ + 2, &cp)) return false;
            size_t used = 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail(pos_, "lone low surrogate in a \\u escape");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              uint32_t lo = 0;
              if (pos_ + 8 > s_.size() || s_[pos_ + 6] != '\\' || s_[pos_ + 7] != 'u')
                return Fail(pos_, "high surrogate without a low surrogate in a \\u escape");
              if (!Hex4(pos_ + 8, &lo)) return false;
              if (lo < 0xDC00 || lo > 0xDFFF) return Fail(pos_ + 6, "expected a low surrogate in a \\u escape");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
              used = 12;
            }
            append_utf8(cp, out);
            pos_ += used;
            continue;
          }
          default: return Fail(pos_, "invalid escape \\" + std::string(1, e));
        }
        pos_ += 2;
        continue;
      }
      const size_t n = utf8_sequence(s_, pos_);
      if (n == 0) return Fail(pos_, "invalid UTF-8 in a string");
      out->append(s_.substr(pos_, n));
      pos_ += n;
    }
  }

  bool NumberValue(JsonValue* out) {
    const size_t start = pos_;
    size_t i = pos_;
    const auto digit = [&](size_t k) { return k < s_.size() && s_[k] >= '0' && s_[k] <= '9'; };
    if (s_[i] == '-') ++i;
    if (!digit(i)) return Fail(i, "expected a digit in a number");
    if (s_[i] == '0') {
      ++i;
      if (digit(i)) return Fail(i, "leading zero in a number");
    } else {
      while (digit(i)) ++i;
    }
    bool integral = true;
    if (i < s_.size() && s_[i] == '.') {
      integral = false;
      ++i;
      if (!digit(i)) return Fail(i, "expected a digit after the decimal point");
      while (digit(i)) ++i;
    }
    if (i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
      integral = false;
      ++i;
      if (i < s_.size() && (s_[i] == '+' || s_[i] == '-')) ++i;
      if (!digit(i)) return Fail(i, "expected a digit in an exponent");
      while (digit(i)) ++i;
    }
    const char* b = s_.data() + start;
    const char* e = s_.data() + i;
    double d = 0;
    auto r = std::from_chars(b, e, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Overflow to +-inf is not representable in JSON output; underflow is fine as 0.
      if (!std::isfinite(std::strtod(std::string(b, e).c_str(), nullptr)))
        return Fail(start, "number out of range");
      d = 0;
    } else if (r.ec != std::errc() || r.ptr != e) {
      return Fail(start, "malformed number");
    }
    *out = JsonValue::Number(d);
    if (integral) {
      int64_t v = 0;
      auto ri = std::from_chars(b, e, v);
      if (ri.ec == std::errc() && ri.ptr == e) {
        out->int_ = v;
        out->is_int_ = true;
      }
    }
    pos_ = i;
    return true;
  }

  std::string_view s_;
  JsonParseOptions opt_;
  size_t pos_ = 0;
  Status error_;
};

Status ParseJson(std::string_view text, JsonValue* out, const JsonParseOptions& options) {
  if (!out) return InvalidArgument("ParseJson: out is null");
  JsonParser p(text, options);
  return p.Run(out);
}

// ---- writer ----------------------------------------------------------------------

namespace {

void quote_into(std::string_view s, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      switch (c) {
        case '\n': out->append("\\n"); break;
        case '\r': out->append("\\r"); break;
        case '\t': out->append("\\t"); break;
        case '\b': out->append("\\b"); break;
        case '\f': out->append("\\f"); break;
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out->append(buf);
        }
      }
      ++i;
    } else if (c < 0x80) {
      out->push_back(static_cast<char>(c));
      ++i;
    } else {
      const size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for a byte that is not valid UTF-8
        ++i;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
    }
  }
  out->push_back('"');
}

void write_into(const JsonValue& v, std::string* out) {
  switch (v.kind()) {
    case JsonValue::Kind::kNull: out->append("null"); return;
    case JsonValue::Kind::kBool: out->append(v.as_bool() ? "true" : "false"); return;
    case JsonValue::Kind::kNumber: {
      if (v.is_int()) {
        out->append(std::to_string(v.as_int()));
        return;
      }
      const double d = v.as_double();
      if (!std::isfinite(d)) {
        out->append("null");
        return;
      }
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out->append(buf, r.ptr);
      return;
    }
    case JsonValue::Kind::kString: quote_into(v.as_string(), out); return;
    case JsonValue::Kind::kArray: {
      out->push_back('[');
      bool first = true;
      for (const JsonValue& e : v.items()) {
        if (!first) out->append(", ");
        first = false;
        write_into(e, out);
      }
      out->push_back(']');
      return;
    }
    case JsonValue::Kind::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.members()) {
        if (!first) out->append(", ");
        first = false;
        quote_into(k, out);
        out->append(": ");
        write_into(e, out);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

std::string WriteJson(const JsonValue& v) {
  std::string out;
  write_into(v, &out);
  return out;
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  quote_into(s, &out);
  return out;
}

}  // namespace ember
