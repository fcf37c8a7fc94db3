// Python's str operations on UTF-8 strings (jinja_strings.h).
#include "tokenizer/chat/jinja_strings.h"

#include <algorithm>

#include "tokenizer/chat/jinja_value.h"

namespace ember::jinja {
namespace {

// The code point of a UTF-8 sequence (or the lead byte of an invalid one).
uint32_t CodePoint(std::string_view cp) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(cp[i])); };
  if (cp.size() == 2) return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  if (cp.size() == 3) return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  if (cp.size() == 4) return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  return cp.empty() ? 0 : b(0);
}

bool IsPySpace(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }
char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

}  // namespace

std::string PyStrip(std::string_view s, const std::string* chars, StripSide side) {
  std::vector<std::string> cps = SplitCodePoints(s);
  std::vector<std::string> set = chars ? SplitCodePoints(*chars) : std::vector<std::string>{};
  auto strip = [&](const std::string& cp) {
    if (!chars) return IsPySpace(CodePoint(cp));
    return std::find(set.begin(), set.end(), cp) != set.end();
  };
  size_t begin = 0, end = cps.size();
  if (side != StripSide::kRight)
    while (begin < end && strip(cps[begin])) ++begin;
  if (side != StripSide::kLeft)
    while (end > begin && strip(cps[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) out += cps[i];
  return out;
}

std::vector<std::string> PySplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (sep) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      size_t hit = s.find(*sep, start);
      if (hit == std::string_view::npos) break;
      out.emplace_back(s.substr(start, hit - start));
      start = hit + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  std::vector<std::string> cps = SplitCodePoints(s);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && IsPySpace(CodePoint(cps[i]))) ++i;
    if (i >= cps.size()) break;
    std::string word;
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {  // the rest, right-stripped
      for (; i < cps.size(); ++i) word += cps[i];
      out.push_back(PyStrip(word, nullptr, StripSide::kRight));
      break;
    }
    for (; i < cps.size() && !IsPySpace(CodePoint(cps[i])); ++i) word += cps[i];
    out.push_back(std::move(word));
  }
  return out;
}

std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl, int64_t count) {
  std::string out;
  if (old.empty()) {
    std::vector<std::string> cps = SplitCodePoints(s);
    int64_t done = 0;
    for (size_t i = 0; i <= cps.size(); ++i) {
      if (count < 0 || done < count) {
        out += repl;
        ++done;
      }
      if (i < cps.size()) out += cps[i];
    }
    return out;
  }
  size_t start = 0;
  for (int64_t done = 0; count < 0 || done < count; ++done) {
    size_t hit = s.find(old, start);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(start, hit - start));
    out.append(repl);
    start = hit + old.size();
  }
  out.append(s.substr(start));
  return out;
}

std::string PyUpper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), Upper);
  return out;
}

std::string PyLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), Lower);
  return out;
}

std::string PyCapitalize(std::string_view s) {
  std::string out = PyLower(s);
  if (!out.empty()) out[0] = Upper(out[0]);
  return out;
}

std::string PyTitle(std::string_view s) {
  std::string out(s);
  bool prev_letter = false;
  for (char& c : out) {
    bool letter = IsAsciiLetter(c) || (static_cast<unsigned char>(c) >= 0x80);
    if (IsAsciiLetter(c)) c = prev_letter ? Lower(c) : Upper(c);
    prev_letter = letter;
  }
  return out;
}

std::string JinjaTitle(std::string_view s) {
  std::string out(s);
  bool word_start = true;
  for (char& c : out) {
    bool separator = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '-' ||
                     c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      word_start = true;
      continue;
    }
    c = word_start ? Upper(c) : Lower(c);
    word_start = false;
  }
  return out;
}

int64_t PyFind(std::string_view s, std::string_view sub) {
  size_t hit = s.find(sub);
  if (hit == std::string_view::npos) return -1;
  return Length(Value::String(std::string(s.substr(0, hit))));
}

}  // namespace ember::jinja
