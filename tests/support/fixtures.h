// Test fixtures live outside the repository, in $EMBER_FIXTURES (default ../shared).
// A missing fixture is a test failure, never a skip: CI must have them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember::testing {

// Root folder of the fixtures: $EMBER_FIXTURES or the path configured at build time.
std::string fixtures_dir();
// fixtures_dir() + "/" + rel; ADD_FAILURE()s (and returns the path anyway) when absent.
std::string fixture(const std::string& rel);
bool file_exists(const std::string& path);
// Whole file as bytes; ADD_FAILURE() and empty on error.
std::vector<uint8_t> read_file(const std::string& path);
// Comma- or space-separated integers from a text file ("1,403,407" or "2 362 344").
std::vector<int32_t> read_ids(const std::string& path);
// Raw little-endian float32 file.
std::vector<float> read_f32(const std::string& path);

}  // namespace ember::testing
