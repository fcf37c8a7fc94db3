// JSON for the library, on nlohmann-json: a reader for the configuration the engine
// loads (functions.json, adapter_config.json, safetensors headers, GGUF metadata
// holding JSON text) and a writer for the structured results it returns.
//
// Reader contract (ParseJson):
//  - nlohmann's strict RFC 8259 reader: the whole input is one value (surrounding
//    whitespace allowed); trailing bytes, comments, trailing commas, single quotes,
//    NaN/Infinity, leading zeros ("01"), raw control characters in strings, invalid
//    UTF-8 and lone surrogates in \u escapes are errors; numbers beyond double range
//    are errors.
//  - On top of nlohmann, as the library's reader always did: object keys must be
//    unique (nlohmann keeps the last), and nesting deeper than max_depth (arrays +
//    objects) is an error, so hostile input cannot make the parse unbounded.
//  - Errors are BadFormat statuses naming the byte offset, line and column:
//    "functions.json: offset 5 (line 1, column 6): syntax error while parsing object
//    separator - unexpected number literal; expected ':'". Nothing throws.
//  - Numbers: integers stay integers (negative: number_integer, non-negative:
//    number_unsigned, when they fit 64 bits), everything else is a double.
//
// Reading a parsed Json without exceptions: JsonFind for members, is_*() before
// get<T>(), JsonInt64 for integers. Avoid at() and get<T>() without a type check
// (they throw) and operator[] on a const object (undefined for a missing key).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace ember {

// Objects keep the order of the text or of insertion: a safetensors header's tensors
// in file order, a call's {"function", "arguments", "token"} in that order.
using Json = nlohmann::ordered_json;

constexpr int kJsonMaxDepth = 64;

// Parses text into *out; `source` names it in errors ("functions.json"; "" = "JSON").
// On error *out is unchanged and the status is BadFormat.
Status ParseJson(std::string_view text, std::string_view source, Json* out, int max_depth = kJsonMaxDepth);

// Member `key` of an object; nullptr when absent or when `v` is not an object.
const Json* JsonFind(const Json& v, std::string_view key);
// An integer that fits int64 ("7", "-3"; not "7.0", not 2^63): *out and true.
bool JsonInt64(const Json& v, int64_t* out);

// The library's output form (README, C API, tests): ", " and ": " separators,
// {"function": "x", "arguments": {"a": 1}}. Strings are escaped (", \, control
// characters); invalid UTF-8 bytes become U+FFFD so the output is always valid JSON.
// Non-finite numbers become null. Not Json::dump(), which separates with "," and ":"
// and throws on invalid UTF-8.
std::string WriteJson(const Json& v);
// One JSON string literal, quotes included, escaped as above.
std::string JsonQuote(std::string_view s);

}  // namespace ember
