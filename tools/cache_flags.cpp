#include "cache_flags.h"

namespace ember::cli {

std::string parse_cache_types(std::string_view list, std::vector<ember_cache_type>* out) {
  std::vector<ember_cache_type> types;
  while (true) {
    const size_t comma = list.find(',');
    const std::string name(list.substr(0, comma));
    ember_cache_type t{};
    if (ember_cache_type_from_name(name.c_str(), &t) != EMBER_OK) return ember_last_error();
    types.push_back(t);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  *out = std::move(types);
  return "";
}

void declare_cache_flags(ArgParser& p, CacheFlags& c, bool lists) {
  const auto check = [lists](std::string_view v) {
    std::vector<ember_cache_type> types;
    std::string why = parse_cache_types(v, &types);
    if (why.empty() && !lists && types.size() > 1) why = "one type, not a list";
    return why;
  };
  const std::string metavar = lists ? "TYPE,.." : "TYPE";
  const std::string more = lists ? "; a list gives one row per type" : "";
  p.option("cache-type-k", 0, metavar, &c.type_k, "KV cache type of keys: f32, f16 or q8_0" + more)
      .alias("ctk")
      .check(check);
  p.option("cache-type-v", 0, metavar, &c.type_v, "KV cache type of values: f32, f16 or q8_0" + more)
      .alias("ctv")
      .check(check);
  p.flag("swa-full", 0, &c.swa_full,
         "sliding-window layers (Gemma 2/3) keep the whole context instead of a ring of window + batch "
         "(same output, more memory)");
}

void apply_cache_flags(const CacheFlags& c, ember_context_params* cp) {
  std::vector<ember_cache_type> k, v;
  // The parser accepted the names; an unparsed default is f16 either way.
  if (parse_cache_types(c.type_k, &k).empty()) cp->cache_type_k = k.front();
  if (parse_cache_types(c.type_v, &v).empty()) cp->cache_type_v = v.front();
  cp->swa_full = c.swa_full ? 1 : 0;
}

}  // namespace ember::cli
