// A minimal JSON reader for test fixtures (manifest.json, *.jsonl). Parses
// objects, arrays, strings (with \u escapes and surrogate pairs), numbers,
// true/false/null. Not for production input: no depth limits beyond the stack.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ember::testing {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::map<std::string, Json> obj;

  const Json& operator[](const std::string& k) const;  // null Json when absent
  const Json& operator[](size_t i) const { return arr.at(i); }
  bool has(const std::string& k) const { return kind == kObject && obj.count(k); }
  size_t size() const { return kind == kArray ? arr.size() : obj.size(); }
  int64_t i() const { return static_cast<int64_t>(num); }
  std::vector<int32_t> ids() const;  // array of integers
};

// Parses one JSON value; false (and `err`) on malformed input.
bool parse_json(std::string_view text, Json* out, std::string* err = nullptr);
// Each non-empty line of a .jsonl file.
std::vector<Json> read_jsonl(const std::string& path);
Json read_json(const std::string& path);

}  // namespace ember::testing
