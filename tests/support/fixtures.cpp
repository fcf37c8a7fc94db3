#include "support/fixtures.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace ember::testing {

std::string fixtures_dir() {
  const char* e = std::getenv("EMBER_FIXTURES");
  if (e && *e) return e;
  return EMBER_DEFAULT_FIXTURES;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string fixture(const std::string& rel) {
  std::string p = fixtures_dir() + "/" + rel;
  if (!file_exists(p)) ADD_FAILURE() << "missing fixture: " << p << " (set EMBER_FIXTURES)";
  return p;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<int32_t> read_ids(const std::string& path) {
  std::vector<uint8_t> b = read_file(path);
  std::vector<int32_t> ids;
  std::string cur;
  for (uint8_t c : b) {
    if (c >= '0' && c <= '9') {
      cur.push_back(static_cast<char>(c));
    } else if (!cur.empty()) {
      ids.push_back(std::atoi(cur.c_str()));
      cur.clear();
    }
  }
  if (!cur.empty()) ids.push_back(std::atoi(cur.c_str()));
  return ids;
}

std::vector<float> read_f32(const std::string& path) {
  std::vector<uint8_t> b = read_file(path);
  std::vector<float> v(b.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

}  // namespace ember::testing
