// A small JSON reader for the `ember` command's input files (query sets, example
// files). The command sees only the public C API, so it cannot use the library's
// core/json.h; this is its own: values as a tree, errors with the byte offset.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ember::cli {

struct JVal {
  enum Kind { kNull, kBool, kNum, kStr, kArr, kObj } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<JVal> arr;
  std::vector<std::pair<std::string, JVal>> obj;

  const JVal* get(std::string_view k) const {
    if (kind != kObj) return nullptr;
    for (const auto& [key, v] : obj)
      if (key == k) return &v;
    return nullptr;
  }
  bool operator==(const JVal& o) const {
    if (kind != o.kind) return false;
    switch (kind) {
      case kNull: return true;
      case kBool: return b == o.b;
      case kNum: return num == o.num;
      case kStr: return str == o.str;
      case kArr: return arr == o.arr;
      case kObj:
        if (obj.size() != o.obj.size()) return false;
        for (const auto& [k, v] : obj) {
          const JVal* w = o.get(k);
          if (!w || !(v == *w)) return false;
        }
        return true;
    }
    return false;
  }
};

class JReader {
 public:
  explicit JReader(std::string_view s) : s_(s) {}
  // false and *err (with the offset) on malformed input.
  bool parse(JVal* out, std::string* err) {
    ws();
    if (!value(out, 0)) {
      *err = "offset " + std::to_string(pos_) + ": " + err_;
      return false;
    }
    ws();
    if (pos_ != s_.size()) {
      *err = "offset " + std::to_string(pos_) + ": unexpected data after the value";
      return false;
    }
    return true;
  }

 private:
  bool fail(const char* w) {
    err_ = w;
    return false;
  }
  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool lit(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return fail("invalid literal");
    pos_ += w.size();
    return true;
  }
  bool value(JVal* v, int depth) {
    if (depth > 64) return fail("nesting too deep");
    if (pos_ >= s_.size()) return fail("unexpected end of input");
    const char c = s_[pos_];
    if (c == '{') {
      v->kind = JVal::kObj;
      ++pos_;
      ws();
      if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
      for (;;) {
        ws();
        std::string k;
        if (pos_ >= s_.size() || s_[pos_] != '"' || !string(&k)) return err_.empty() ? fail("expected a key") : false;
        ws();
        if (pos_ >= s_.size() || s_[pos_] != ':') return fail("expected ':'");
        ++pos_;
        ws();
        JVal e;
        if (!value(&e, depth + 1)) return false;
        v->obj.emplace_back(std::move(k), std::move(e));
        ws();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == '}') return ++pos_, true;
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v->kind = JVal::kArr;
      ++pos_;
      ws();
      if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
      for (;;) {
        ws();
        JVal e;
        if (!value(&e, depth + 1)) return false;
        v->arr.push_back(std::move(e));
        ws();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == ']') return ++pos_, true;
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v->kind = JVal::kStr;
      return string(&v->str);
    }
    if (c == 't') return v->kind = JVal::kBool, v->b = true, lit("true");
    if (c == 'f') return v->kind = JVal::kBool, v->b = false, lit("false");
    if (c == 'n') return v->kind = JVal::kNull, lit("null");
    if (c == '-' || (c >= '0' && c <= '9')) {
      const size_t start = pos_;
      while (pos_ < s_.size() && std::string_view("+-0123456789.eE").find(s_[pos_]) != std::string_view::npos) ++pos_;
      const std::string t(s_.substr(start, pos_ - start));
      char* end = nullptr;
      v->kind = JVal::kNum;
      v->num = std::strtod(t.c_str(), &end);
      if (end != t.c_str() + t.size()) return fail("malformed number");
      return true;
    }
    return fail("unexpected character");
  }
  static void utf8(uint32_t cp, std::string* o) {
    if (cp < 0x80) {
      o->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      o->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      o->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      o->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      o->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      o->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      o->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      o->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      o->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      o->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  bool hex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[pos_ + k];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else return fail("bad \\u escape");
    }
    pos_ += 4;
    *out = v;
    return true;
  }
  bool string(std::string* o) {
    ++pos_;
    for (;;) {
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        o->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case 'n': o->push_back('\n'); break;
        case 't': o->push_back('\t'); break;
        case 'r': o->push_back('\r'); break;
        case 'b': o->push_back('\b'); break;
        case 'f': o->push_back('\f'); break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            uint32_t lo;
            if (!hex4(&lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(cp, o);
          break;
        }
        default: o->push_back(e);
      }
    }
  }
  std::string_view s_;
  size_t pos_ = 0;
  std::string err_;
};

// The string at v, or "" when v is null or not a string.
inline std::string str_of(const JVal* v) { return v && v->kind == JVal::kStr ? v->str : ""; }

}  // namespace ember::cli
