#include "support/json.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace ember::testing {

bool parse_json(const std::string& text, json* out, std::string* err) {
  try {
    *out = json::parse(text);
    return true;
  } catch (const json::exception& e) {
    if (err) *err = e.what();
    return false;
  }
}

namespace {

// parse_json, and a test failure naming `where` when malformed.
bool parse_or_fail(const std::string& text, const std::string& where, json* out) {
  std::string err;
  if (parse_json(text, out, &err)) return true;
  ADD_FAILURE() << where << ": " << err;
  return false;
}

}  // namespace

json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) ADD_FAILURE() << "cannot read " << path;
  std::stringstream ss;
  ss << f.rdbuf();
  json j;
  parse_or_fail(ss.str(), path, &j);
  return j;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream f(path);
  if (!f) ADD_FAILURE() << "cannot read " << path;
  std::vector<json> out;
  std::string line;
  for (size_t n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    if (parse_or_fail(line, path + ":" + std::to_string(n), &j)) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace ember::testing
