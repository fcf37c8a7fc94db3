#include "core/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <istream>
#include <limits>
#include <streambuf>
#include <unordered_set>
#include <vector>

namespace ember {

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

// ---- reader ----------------------------------------------------------------------

// A string_view read as a stream, without a copy. How far nlohmann has read places the
// errors its exceptions and callbacks carry no offset for (duplicate keys, depth,
// number overflow).
class ViewStreamBuf : public std::streambuf {
 public:
  explicit ViewStreamBuf(std::string_view s) {
    char* p = const_cast<char*>(s.data());  // the get area is only read
    setg(p, p, p + s.size());
  }
  size_t consumed() const { return static_cast<size_t>(gptr() - eback()); }
};

// What the parser callback throws to stop the parse: nlohmann has no other way.
struct CheckFailed {
  size_t offset;
  std::string what;
};

// Offset of the opening quote of the string whose closing quote is at `close`: the
// nearest '"' before it that is not escaped (inside a string every '"' is).
size_t string_start(std::string_view s, size_t close) {
  for (size_t i = std::min(close, s.size()); i-- > 0;) {
    if (s[i] != '"') continue;
    size_t slashes = 0;
    while (slashes < i && s[i - 1 - slashes] == '\\') ++slashes;
    if (slashes % 2 == 0) return i;
  }
  return 0;
}

// Offset where the number literal the reader just passed begins; the reader has
// consumed one byte of lookahead after it unless the input ended.
size_t number_start(std::string_view s, size_t consumed) {
  const auto in_number = [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  };
  size_t i = std::min(consumed, s.size());
  if (i > 0 && !in_number(s[i - 1])) --i;
  while (i > 0 && in_number(s[i - 1])) --i;
  return i;
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 1,
// column 6: <problem>"; keep <problem>, the position is reported once, our way.
std::string nlohmann_problem(const nlohmann::json::exception& e) {
  std::string_view m = e.what();
  if (const size_t p = m.find("] "); p != std::string_view::npos) m.remove_prefix(p + 2);
  if (m.starts_with("parse error"))
    if (const size_t p = m.find(": "); p != std::string_view::npos) m.remove_prefix(p + 2);
  return std::string(m);
}

// nlohmann quotes the bytes it last read, invalid UTF-8 included; an error message
// must stay printable text, so those bytes become \xNN.
std::string printable(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence(s, i);
    if (n == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", static_cast<unsigned char>(s[i]));
      out += buf;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

Status error_at(std::string_view text, std::string_view source, size_t at, std::string_view what) {
  at = std::min(at, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  const std::string src = source.empty() ? std::string("JSON") : std::string(source);
  return BadFormat(src + ": offset " + std::to_string(at) + " (line " + std::to_string(line) + ", column " +
                   std::to_string(col) + "): " + printable(what));
}

// The checks nlohmann does not make, as a parser callback: unique keys and a depth
// limit. Throws CheckFailed.
Json::parser_callback_t checks(std::string_view text, const ViewStreamBuf& buf, int max_depth,
                               std::vector<std::unordered_set<std::string>>* keys) {
  return [=, &buf](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        // `depth` counts the enclosing containers; the '[' or '{' was just read.
        if (depth >= max_depth)
          throw CheckFailed{buf.consumed() - 1, "nesting deeper than " + std::to_string(max_depth)};
        keys->emplace_back();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        keys->pop_back();
        break;
      case Json::parse_event_t::key: {
        const std::string& k = *parsed.get_ptr<const std::string*>();
        if (!keys->back().insert(k).second)
          throw CheckFailed{string_start(text, buf.consumed() - 1), "duplicate key \"" + k + "\""};
        break;
      }
      case Json::parse_event_t::value: break;
    }
    return true;
  };
}

}  // namespace

Status ParseJson(std::string_view text, std::string_view source, Json* out, int max_depth) {
  if (!out) return InvalidArgument("ParseJson: out is null");
  ViewStreamBuf buf(text);
  std::istream in(&buf);
  std::vector<std::unordered_set<std::string>> keys;  // per open container
  try {
    Json v = Json::parse(in, checks(text, buf, max_depth, &keys), /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    *out = std::move(v);
    return Status::Ok();
  } catch (const CheckFailed& f) {
    return error_at(text, source, f.offset, f.what);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte: 1-based index of the last byte read (the end of input counts as one).
    return error_at(text, source, e.byte > 0 ? e.byte - 1 : 0, nlohmann_problem(e));
  } catch (const nlohmann::json::exception& e) {
    // out_of_range 406, a number beyond double range, is the only other parse error.
    return error_at(text, source, number_start(text, buf.consumed()), nlohmann_problem(e));
  }
}

const Json* JsonFind(const Json& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  const auto it = v.find(key);
  return it == v.end() ? nullptr : &*it;
}

bool JsonInt64(const Json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (!v.is_number_integer()) return false;
  *out = v.get<int64_t>();
  return true;
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

void write_number(const Json& v, std::string* out) {
  if (v.is_number_unsigned()) {
    out->append(std::to_string(v.get<uint64_t>()));
  } else if (v.is_number_integer()) {
    out->append(std::to_string(v.get<int64_t>()));
  } else if (const double d = v.get<double>(); !std::isfinite(d)) {
    out->append("null");
  } else {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, d);
    out->append(buf, r.ptr);
  }
}

void write_into(const Json& v, std::string* out) {
  switch (v.type()) {
    case Json::value_t::boolean: out->append(v.get<bool>() ? "true" : "false"); return;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: write_number(v, out); return;
    case Json::value_t::string: quote_into(*v.get_ptr<const std::string*>(), out); return;
    case Json::value_t::array: {
      out->push_back('[');
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it != v.begin()) out->append(", ");
        write_into(*it, out);
      }
      out->push_back(']');
      return;
    }
    case Json::value_t::object: {
      out->push_back('{');
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (it != v.begin()) out->append(", ");
        quote_into(it.key(), out);
        out->append(": ");
        write_into(it.value(), out);
      }
      out->push_back('}');
      return;
    }
    default: out->append("null"); return;  // null; binary and discarded never come from the library
  }
}

}  // namespace

std::string WriteJson(const Json& v) {
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
