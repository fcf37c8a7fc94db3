// JSON for the library: a strict RFC 8259 reader for configuration the engine
// loads (functions.json, GGUF metadata holding JSON text) and a writer for the
// structured results it returns.
//
// Reader contract:
//  - The whole input must be one value (surrounding whitespace allowed); trailing
//    bytes, comments, trailing commas, single quotes, NaN/Infinity, leading zeros
//    ("01") and raw control characters inside strings are errors.
//  - Strings must be valid UTF-8; \uXXXX escapes are decoded, surrogate pairs
//    joined, a lone surrogate is an error. Object keys must be unique.
//  - Nesting deeper than max_depth (arrays + objects) is an error, so hostile input
//    cannot exhaust the stack.
//  - Errors are BadFormat statuses naming the byte offset, line and column:
//    "functions.json: offset 17 (line 2, column 5): expected ':' after an object key".
//  - Numbers keep a double and, when the literal is an integer that fits, an int64.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace ember {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue Bool(bool b);
  static JsonValue Number(double d);
  static JsonValue Int(int64_t i);
  static JsonValue String(std::string s);
  static JsonValue Array();
  static JsonValue Object();

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }
  // A number whose literal had no fraction or exponent and fits int64.
  bool is_int() const { return kind_ == Kind::kNumber && is_int_; }

  bool as_bool() const { return b_; }
  double as_double() const { return num_; }
  int64_t as_int() const { return int_; }
  const std::string& as_string() const { return str_; }
  const std::vector<JsonValue>& items() const { return arr_; }  // array elements
  // Object members in the order of the text.
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return obj_; }
  size_t size() const { return kind_ == Kind::kArray ? arr_.size() : obj_.size(); }

  // Member by key; nullptr when absent or not an object.
  const JsonValue* Find(std::string_view key) const;

  // Building (the value must be an array / object).
  void Push(JsonValue v) { arr_.push_back(std::move(v)); }
  void Set(std::string key, JsonValue v);  // replaces an existing key

  // Structural equality; numbers compare by value (1 == 1.0), objects ignore order.
  bool operator==(const JsonValue& o) const;

 private:
  friend class JsonParser;
  Kind kind_ = Kind::kNull;
  bool b_ = false;
  bool is_int_ = false;
  double num_ = 0;
  int64_t int_ = 0;
  std::string str_;
  std::vector<JsonValue> arr_;
  std::vector<std::pair<std::string, JsonValue>> obj_;
};

struct JsonParseOptions {
  int max_depth = 64;
  std::string_view source;  // named in error messages ("functions.json"); "" = "JSON"
};

// Parses text into *out. On error *out is unchanged and the status is BadFormat.
Status ParseJson(std::string_view text, JsonValue* out, const JsonParseOptions& options = {});

// Compact serialization: {"a":1,"b":[true,null]} -> with ", " and ": " separators
// (the form people read: {"function": "x", "arguments": {"a": 1}}). Strings are
// escaped (", \, control characters); invalid UTF-8 bytes become U+FFFD so the
// output is always valid JSON. Non-finite numbers become null.
std::string WriteJson(const JsonValue& v);
// One JSON string literal, quotes included, escaped as above.
std::string JsonQuote(std::string_view s);

}  // namespace ember
