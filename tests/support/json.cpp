#include "support/json.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ember::testing {
namespace {

struct Parser {
  std::string_view s;
  size_t p = 0;
  std::string err;

  void ws() {
    while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t')) ++p;
  }
  bool fail(const char* m) {
    if (err.empty()) err = std::string(m) + " at offset " + std::to_string(p);
    return false;
  }
  static void utf8(uint32_t c, std::string* o) {
    if (c < 0x80) {
      o->push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      o->push_back(static_cast<char>(0xc0 | (c >> 6)));
      o->push_back(static_cast<char>(0x80 | (c & 0x3f)));
    } else if (c < 0x10000) {
      o->push_back(static_cast<char>(0xe0 | (c >> 12)));
      o->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
      o->push_back(static_cast<char>(0x80 | (c & 0x3f)));
    } else {
      o->push_back(static_cast<char>(0xf0 | (c >> 18)));
      o->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
      o->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
      o->push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  bool hex4(uint32_t* v) {
    if (p + 4 > s.size()) return fail("short \\u escape");
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s[p++];
      *v <<= 4;
      if (c >= '0' && c <= '9') *v |= c - '0';
      else if (c >= 'a' && c <= 'f') *v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') *v |= c - 'A' + 10;
      else return fail("bad hex digit");
    }
    return true;
  }
  bool string(std::string* o) {
    ++p;  // opening quote
    while (p < s.size() && s[p] != '"') {
      char c = s[p++];
      if (c != '\\') {
        o->push_back(c);
        continue;
      }
      if (p >= s.size()) return fail("dangling escape");
      char e = s[p++];
      switch (e) {
        case '"': o->push_back('"'); break;
        case '\\': o->push_back('\\'); break;
        case '/': o->push_back('/'); break;
        case 'b': o->push_back('\b'); break;
        case 'f': o->push_back('\f'); break;
        case 'n': o->push_back('\n'); break;
        case 'r': o->push_back('\r'); break;
        case 't': o->push_back('\t'); break;
        case 'u': {
          uint32_t c1 = 0;
          if (!hex4(&c1)) return false;
          if (c1 >= 0xd800 && c1 < 0xdc00 && p + 6 <= s.size() && s[p] == '\\' && s[p + 1] == 'u') {
            p += 2;
            uint32_t c2 = 0;
            if (!hex4(&c2)) return false;
            c1 = 0x10000 + ((c1 - 0xd800) << 10) + (c2 - 0xdc00);
          }
          utf8(c1, o);
          break;
        }
        default: return fail("bad escape");
      }
    }
    if (p >= s.size()) return fail("unterminated string");
    ++p;
    return true;
  }
  bool value(Json* v) {
    ws();
    if (p >= s.size()) return fail("unexpected end");
    char c = s[p];
    if (c == '{') {
      v->kind = Json::kObject;
      ++p;
      ws();
      if (p < s.size() && s[p] == '}') { ++p; return true; }
      for (;;) {
        ws();
        if (p >= s.size() || s[p] != '"') return fail("expected key");
        std::string k;
        if (!string(&k)) return false;
        ws();
        if (p >= s.size() || s[p] != ':') return fail("expected ':'");
        ++p;
        if (!value(&v->obj[k])) return false;
        ws();
        if (p < s.size() && s[p] == ',') { ++p; continue; }
        if (p < s.size() && s[p] == '}') { ++p; return true; }
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v->kind = Json::kArray;
      ++p;
      ws();
      if (p < s.size() && s[p] == ']') { ++p; return true; }
      for (;;) {
        v->arr.emplace_back();
        if (!value(&v->arr.back())) return false;
        ws();
        if (p < s.size() && s[p] == ',') { ++p; continue; }
        if (p < s.size() && s[p] == ']') { ++p; return true; }
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') { v->kind = Json::kString; return string(&v->str); }
    if (s.substr(p, 4) == "true") { v->kind = Json::kBool; v->b = true; p += 4; return true; }
    if (s.substr(p, 5) == "false") { v->kind = Json::kBool; p += 5; return true; }
    if (s.substr(p, 4) == "null") { v->kind = Json::kNull; p += 4; return true; }
    size_t q = p;
    while (q < s.size() && (std::isdigit(static_cast<unsigned char>(s[q])) || s[q] == '-' || s[q] == '+' ||
                            s[q] == '.' || s[q] == 'e' || s[q] == 'E'))
      ++q;
    if (q == p) return fail("unexpected character");
    v->kind = Json::kNumber;
    v->num = std::strtod(std::string(s.substr(p, q - p)).c_str(), nullptr);
    p = q;
    return true;
  }
};

}  // namespace

const Json& Json::operator[](const std::string& k) const {
  static const Json null;
  if (kind != kObject) return null;
  auto it = obj.find(k);
  return it == obj.end() ? null : it->second;
}

std::vector<int32_t> Json::ids() const {
  std::vector<int32_t> v;
  for (const Json& j : arr) v.push_back(static_cast<int32_t>(j.num));
  return v;
}

bool parse_json(std::string_view text, Json* out, std::string* err) {
  Parser ps;
  ps.s = text;
  *out = Json();
  bool ok = ps.value(out);
  if (ok) {
    ps.ws();
    if (ps.p != text.size()) ok = ps.fail("trailing characters");
  }
  if (!ok && err) *err = ps.err;
  return ok;
}

std::vector<Json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  if (!f) ADD_FAILURE() << "cannot read " << path;
  std::vector<Json> out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j;
    std::string err;
    if (!parse_json(line, &j, &err)) {
      ADD_FAILURE() << path << ": " << err;
      continue;
    }
    out.push_back(std::move(j));
  }
  return out;
}

Json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) ADD_FAILURE() << "cannot read " << path;
  std::stringstream ss;
  ss << f.rdbuf();
  Json j;
  std::string err;
  if (!parse_json(ss.str(), &j, &err)) ADD_FAILURE() << path << ": " << err;
  return j;
}

}  // namespace ember::testing
