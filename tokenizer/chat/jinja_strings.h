// Python's str operations on UTF-8 strings, as the Jinja filters and methods need them
// (tokenizer/chat/). Whitespace is Python's str.isspace() set (ASCII whitespace, U+001C..
// U+001F, U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000).
// Case mapping is ASCII only: non-ASCII letters keep their case (a documented limit).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ember::jinja {

enum class StripSide { kBoth, kLeft, kRight };
// str.strip() (chars == nullptr: whitespace) / lstrip / rstrip; chars are code points.
std::string PyStrip(std::string_view s, const std::string* chars, StripSide side);
// str.split(sep, maxsplit): sep == nullptr splits on whitespace runs; maxsplit < 0: all.
std::vector<std::string> PySplit(std::string_view s, const std::string* sep, int64_t maxsplit);
// str.replace(old, new, count): count < 0 all; an empty old inserts between code points.
std::string PyReplace(std::string_view s, std::string_view old, std::string_view repl, int64_t count);
std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
std::string PyCapitalize(std::string_view s);  // first letter upper, the rest lower
std::string PyTitle(std::string_view s);       // str.title(): each letter run starts upper
std::string JinjaTitle(std::string_view s);    // the |title filter: words split at spaces, -({[<
// str.find(sub): index in code points, -1 when absent.
int64_t PyFind(std::string_view s, std::string_view sub);

}  // namespace ember::jinja
