#include "queries.h"

#include "../common.h"

namespace ember::cli {

namespace {

std::vector<int32_t> ids_of(const Json* v) {
  std::vector<int32_t> out;
  if (!v || !v->is_array()) return out;
  for (const Json& e : *v) out.push_back(e.is_number() ? static_cast<int32_t>(e.get<double>()) : 0);
  return out;
}

}  // namespace

bool parse_query(std::string_view line, Query* q, std::string* err) {
  Json v;
  if (!parse_json(line, &v, err)) return false;
  const Json* query = json_member(v, "query");
  if (!query || !query->is_string() || !json_member(v, "function")) {
    *err = "expected an object with \"query\" and \"function\"";
    return false;
  }
  q->query = query->get<std::string>();
  q->function = json_string_member(v, "function");
  if (const Json* a = json_member(v, "args")) {
    q->args = *a;
    q->has_args = true;
  }
  q->token = json_string_member(v, "functional_token");
  q->expected = json_string_member(v, "expected");
  q->kind = json_string_member(v, "kind");
  q->domain = json_string_member(v, "domain");
  q->expected_ids = ids_of(json_member(v, "expected_ids"));
  q->reference_ids = ids_of(json_member(v, "reference_output_ids"));
  return true;
}

bool read_queries(const std::string& path, int32_t limit, std::vector<Query>* out, std::string* err) {
  std::string text;
  if (!read_text_file(path, &text, err)) return false;
  const size_t before = out->size();
  bool bad_line = false;
  for_each_line(text, [&](size_t line_no, std::string_view line) {
    if (limit > 0 && static_cast<int32_t>(out->size()) >= limit) return false;  // enough
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
    Query q;
    std::string e;
    if (!parse_query(line, &q, &e)) {
      *err = path + ":" + std::to_string(line_no) + ": " + e;
      bad_line = true;
      return false;
    }
    out->push_back(std::move(q));
    return true;
  });
  if (bad_line) return false;
  if (out->size() == before && !(limit > 0 && static_cast<int32_t>(before) >= limit)) {
    *err = path + ": no queries";
    return false;
  }
  return true;
}

bool parse_half(std::string_view name, Half* out) {
  if (name == "all") *out = Half::kAll;
  else if (name == "calibration") *out = Half::kCalibration;
  else if (name == "test") *out = Half::kTest;
  else return false;
  return true;
}

std::vector<Query> select_half(std::vector<Query> qs, Half half) {
  if (half == Half::kAll) return qs;
  std::vector<Query> out;
  for (size_t i = half == Half::kCalibration ? 0 : 1; i < qs.size(); i += 2) out.push_back(std::move(qs[i]));
  return out;
}

bool same_call(const Query& q, std::string_view got_function, const Json& got_args) {
  return !got_function.empty() && q.has_args && q.function == got_function && got_args == q.args;
}

}  // namespace ember::cli

namespace ember::cli {

bool same_call(const Query& q, const ember_call_result& r) {
  Json args;
  std::string err;
  if (!r.valid || r.function_index < 0 || !parse_json(r.arguments ? r.arguments : "", &args, &err)) return false;
  return same_call(q, r.function, args);
}

}  // namespace ember::cli
