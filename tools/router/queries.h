// Labelled query sets of function calling (octopus-tiny's test_queries.jsonl: one object per
// line with "query", "function", "args"; optional "functional_token", "expected",
// "expected_ids", "reference_output_ids", "kind", "domain"), the halves the router is
// calibrated and tested on, and the exact-match criterion every column of eval-calls uses.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "../json_io.h"
#include "ember/ember.h"

namespace ember::cli {

struct Query {
  std::string query, function, token, kind, domain, expected;
  Json args;
  std::vector<int32_t> expected_ids, reference_ids;
  bool has_args = false;
};

// One line of a query set; false with *err (without the file and line) when it is not
// an object with a string "query" and a "function".
bool parse_query(std::string_view line, Query* q, std::string* err);

// Appends the queries of path to *out, stopping once out holds limit (> 0) queries;
// false with *err naming the file and line.
bool read_queries(const std::string& path, int32_t limit, std::vector<Query>* out, std::string* err);

// The router's deterministic split of a query list (the files concatenated in the order
// given): rows 0, 2, 4, … are the calibration half, rows 1, 3, 5, … the test half.
enum class Half { kAll, kCalibration, kTest };
// "all", "calibration", "test"; false for anything else.
bool parse_half(std::string_view name, Half* out);
std::vector<Query> select_half(std::vector<Query> qs, Half half);

// Exact match: the expected function, with arguments equal (as JSON values) to the
// expected ones. got_function "" (no call) is never a match.
bool same_call(const Query& q, std::string_view got_function, const Json& got_args);
// same_call for a local ember_call result (an invalid call or "no function" never matches).
bool same_call(const Query& q, const ember_call_result& r);

}  // namespace ember::cli
