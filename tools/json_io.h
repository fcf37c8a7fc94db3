// JSON for the `ember` command: its input files (query sets, example files) are read
// with nlohmann-json (the command sees only the public C API, not the library's
// core/json.h); the JSON it writes is built as text, its strings quoted here.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

namespace ember::cli {

using Json = nlohmann::json;

// Parses one JSON value; false with *err ("column C: what is wrong") on malformed input.
bool parse_json(std::string_view text, Json* out, std::string* err);

// The member `key` of an object, or null when j is not an object or has no such member.
const Json* json_member(const Json& j, const char* key);
// The string member `key`, or "" when absent or not a string.
std::string json_string_member(const Json& j, const char* key);

// s as a JSON string literal: '"', '\' and bytes below 0x20 escaped, other bytes as they are.
std::string json_quote(std::string_view s);

// Calls fn(line_number, line) for every line of text (1-based, without the '\n');
// stops early and returns false when fn does.
bool for_each_line(std::string_view text, const std::function<bool(size_t, std::string_view)>& fn);

}  // namespace ember::cli
