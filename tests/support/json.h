// Fixture JSON (manifest.json, *.jsonl) and the CLI's JSON output, read with
// nlohmann-json. Tests index with at() and get<T>(): a missing key or a wrong type
// throws, and gtest reports the exception as the test's failure.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::testing {

using nlohmann::json;

// text as JSON: false, and nlohmann's message in *err, when malformed.
bool parse_json(const std::string& text, json* out, std::string* err = nullptr);
// The whole file as one value; ADD_FAILURE() and null when unreadable or malformed.
json read_json(const std::string& path);
// Each non-blank line of a .jsonl file; ADD_FAILURE() for a malformed line.
std::vector<json> read_jsonl(const std::string& path);

}  // namespace ember::testing
