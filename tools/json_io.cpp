#include "json_io.h"

#include <cstdio>

namespace ember::cli {

bool parse_json(std::string_view text, Json* out, std::string* err) {
  try {
    *out = Json::parse(text.begin(), text.end());
    return true;
  } catch (const Json::parse_error& e) {
    // what(): "[json.exception.parse_error.101] parse error at line 1, column 8: syntax
    // error while parsing value - ...": keep the reason after the position.
    const std::string what = e.what();
    const size_t column = what.find(", column ");
    const size_t reason = column == std::string::npos ? std::string::npos : what.find(": ", column);
    *err = "column " + std::to_string(e.byte) + ": " +
           (reason == std::string::npos ? what : what.substr(reason + 2));
    return false;
  } catch (const Json::exception& e) {
    // Not a syntax error: out_of_range 406, a number beyond double ("1e400"), which
    // nlohmann throws from the parser too (found by fuzz_server_request).
    const std::string what = e.what();
    const size_t tag = what.find("] ");
    *err = tag == std::string::npos ? what : what.substr(tag + 2);
    return false;
  }
}

const Json* json_member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string json_string_member(const Json& j, const char* key) {
  const Json* v = json_member(j, key);
  return v && v->is_string() ? v->get<std::string>() : "";
}

std::string json_quote(std::string_view s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o.push_back('\\');
      o.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else {
      o.push_back(static_cast<char>(c));
    }
  }
  return o + "\"";
}

bool for_each_line(std::string_view text, const std::function<bool(size_t, std::string_view)>& fn) {
  size_t line_no = 0;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(at, nl - at);
    at = nl + 1;
    if (!fn(++line_no, line)) return false;
  }
  return true;
}

}  // namespace ember::cli
