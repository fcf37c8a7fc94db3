#include "args.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "common.h"

namespace ember::cli {

namespace {

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

// ---- value parsing ------------------------------------------------------------------

bool parse_int64(std::string_view s, int64_t* out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  *out = v;
  return true;
}

bool parse_uint64(std::string_view s, uint64_t* out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  *out = v;
  return true;
}

bool parse_float(std::string_view s, float* out) {
  // strtof needs a NUL-terminated string and accepts leading spaces; be strict.
  if (s.empty() || s.front() == ' ' || s.front() == '\t') return false;
  std::string z(s);
  errno = 0;
  char* end = nullptr;
  float v = std::strtof(z.c_str(), &end);
  if (end != z.c_str() + z.size() || errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool parse_int_list(std::string_view s, std::vector<int32_t>* out) {
  std::vector<int32_t> ids;
  s = trim(s);
  if (s.empty()) return false;
  while (true) {
    size_t comma = s.find(',');
    std::string_view item = trim(s.substr(0, comma));
    int64_t v = 0;
    if (!parse_int64(item, &v) || v < std::numeric_limits<int32_t>::min() ||
        v > std::numeric_limits<int32_t>::max())
      return false;
    ids.push_back(static_cast<int32_t>(v));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  *out = std::move(ids);
  return true;
}

// ---- Option setters -------------------------------------------------------------------

ArgParser::Option& ArgParser::Option::range(int64_t lo, int64_t hi) {
  has_int_range = true;
  ilo = lo;
  ihi = hi;
  return *this;
}

ArgParser::Option& ArgParser::Option::range(double lo, double hi, bool open) {
  has_float_range = true;
  flo = lo;
  fhi = hi;
  lo_open = open;
  return *this;
}

ArgParser::Option& ArgParser::Option::required() {
  is_required = true;
  default_shown.clear();
  return *this;
}

ArgParser::Option& ArgParser::Option::default_text(std::string text) {
  default_shown = std::move(text);
  return *this;
}

ArgParser::Option& ArgParser::Option::alias(std::string name) {
  aliases.push_back(std::move(name));
  return *this;
}

ArgParser::Option& ArgParser::Option::check(std::function<std::string(std::string_view)> t) {
  test = std::move(t);
  return *this;
}

// ---- declaration ----------------------------------------------------------------------

ArgParser::ArgParser(std::string command, std::string usage, std::string summary)
    : command_(std::move(command)), usage_(std::move(usage)), summary_(std::move(summary)) {}

ArgParser::Option& ArgParser::add(std::string long_name, char short_name, std::string metavar,
                                  Option::Target target, std::string help,
                                  std::string default_shown) {
  Option& o = options_.emplace_back();
  o.long_name = std::move(long_name);
  o.short_name = short_name;
  o.metavar = std::move(metavar);
  o.target = target;
  o.help = std::move(help);
  o.default_shown = std::move(default_shown);
  return o;
}

ArgParser::Option& ArgParser::flag(std::string long_name, char short_name, bool* out,
                                   std::string help) {
  return add(std::move(long_name), short_name, "", out, std::move(help), "");
}

ArgParser::Option& ArgParser::option(std::string long_name, char short_name, std::string metavar,
                                     int32_t* out, std::string help) {
  return add(std::move(long_name), short_name, std::move(metavar), out, std::move(help),
             std::to_string(*out));
}

ArgParser::Option& ArgParser::option(std::string long_name, char short_name, std::string metavar,
                                     uint64_t* out, std::string help) {
  return add(std::move(long_name), short_name, std::move(metavar), out, std::move(help),
             std::to_string(*out));
}

ArgParser::Option& ArgParser::option(std::string long_name, char short_name, std::string metavar,
                                     float* out, std::string help) {
  return add(std::move(long_name), short_name, std::move(metavar), out, std::move(help),
             format_double(*out));
}

ArgParser::Option& ArgParser::option(std::string long_name, char short_name, std::string metavar,
                                     std::string* out, std::string help) {
  return add(std::move(long_name), short_name, std::move(metavar), out, std::move(help), *out);
}

ArgParser::Option& ArgParser::option(std::string long_name, char short_name, std::string metavar,
                                     std::vector<std::string>* out, std::string help) {
  return add(std::move(long_name), short_name, std::move(metavar), out, std::move(help), "");
}

ArgParser::Option& ArgParser::option(std::string long_name, char short_name, std::string metavar,
                                     std::vector<int32_t>* out, std::string help) {
  return add(std::move(long_name), short_name, std::move(metavar), out, std::move(help), "");
}

void ArgParser::positional(std::string metavar, std::string* out, std::string help, bool required) {
  positionals_.push_back({std::move(metavar), std::move(help), out, required});
}

void ArgParser::epilog(std::string text) { epilog_ = std::move(text); }

// ---- lookup ---------------------------------------------------------------------------

const ArgParser::Option* ArgParser::find_long(std::string_view name) const {
  for (const Option& o : options_)
    if (o.long_name == name) return &o;
  return nullptr;
}

ArgParser::Option* ArgParser::find_long(std::string_view name) {
  for (Option& o : options_)
    if (o.long_name == name) return &o;
  return nullptr;
}

ArgParser::Option* ArgParser::find_short(char c) {
  for (Option& o : options_)
    if (c != 0 && o.short_name == c) return &o;
  return nullptr;
}

ArgParser::Option* ArgParser::find_single_dash(const std::string& a, std::string* shown, std::string* value,
                                               bool* has_value) {
  for (Option& o : options_)
    for (const std::string& al : o.aliases) {
      const size_t n = al.size() + 1;
      if (a.compare(1, al.size(), al) != 0 || (a.size() > n && a[n] != '=')) continue;
      *shown = a.substr(0, n);
      *has_value = a.size() > n;
      if (*has_value) *value = a.substr(n + 1);
      return &o;
    }
  *shown = a.substr(0, 2);
  *has_value = a.size() > 2;
  if (*has_value) {
    *value = a.substr(2);
    if (!value->empty() && (*value)[0] == '=') value->erase(0, 1);  // -n=20
  }
  return find_short(a[1]);
}

bool ArgParser::seen(std::string_view long_name) const {
  const Option* o = find_long(long_name);
  return o && o->seen;
}

// ---- parsing --------------------------------------------------------------------------

std::string ArgParser::assign(Option& o, std::string_view value) {
  struct Visitor {
    Option& o;
    std::string_view value;
    std::string operator()(bool* out) const {
      *out = true;
      return "";
    }
    std::string operator()(int32_t* out) const {
      int64_t v = 0;
      if (!parse_int64(value, &v)) return "expected an integer";
      int64_t lo = o.has_int_range ? o.ilo : std::numeric_limits<int32_t>::min();
      int64_t hi = o.has_int_range ? o.ihi : std::numeric_limits<int32_t>::max();
      if (v < lo || v > hi)
        return "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
      *out = static_cast<int32_t>(v);
      return "";
    }
    std::string operator()(uint64_t* out) const {
      uint64_t v = 0;
      if (!parse_uint64(value, &v)) return "expected an integer in [0, 2^64)";
      *out = v;
      return "";
    }
    std::string operator()(float* out) const {
      float v = 0;
      if (!parse_float(value, &v)) return "expected a number";
      if (o.has_float_range) {
        bool ok = (o.lo_open ? v > o.flo : v >= o.flo) && v <= o.fhi;
        if (!ok)
          return std::string("must be in ") + (o.lo_open ? "(" : "[") + format_double(o.flo) +
                 ", " + format_double(o.fhi) + "]";
      }
      *out = v;
      return "";
    }
    std::string operator()(std::string* out) const {
      *out = std::string(value);
      return "";
    }
    std::string operator()(std::vector<std::string>* out) const {
      out->emplace_back(value);
      return "";
    }
    std::string operator()(std::vector<int32_t>* out) const {
      std::vector<int32_t> ids;
      if (!parse_int_list(value, &ids)) return "expected comma-separated integers";
      *out = std::move(ids);
      return "";
    }
  };
  return std::visit(Visitor{o, value}, o.target);
}

int ArgParser::usage_error(std::string_view message) const {
  print_error(command_, std::string(message) + " (see 'ember " + command_ + " --help')");
  return kExitUsage;
}

// --help anywhere before `--` wins over every other problem, so that
// "ember run --tmep 1 --help" still shows the help. The scan skips the values of flags
// ("-p --help" is a prompt).
bool ArgParser::asks_for_help(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a == "--help" || a == "-h") return true;
    const Option* o = nullptr;
    if (a.size() > 2 && a[0] == '-' && a[1] == '-' && a.find('=') == std::string::npos)
      o = find_long(std::string_view(a).substr(2));
    else if (a.size() >= 2 && a[0] == '-' && a[1] != '-') {
      std::string shown, value;
      bool attached = false;
      o = find_single_dash(a, &shown, &value, &attached);
      if (attached) o = nullptr;  // its value is in the same argument
    }
    if (o && !std::holds_alternative<bool*>(o->target)) ++i;
  }
  return false;
}

// The flag args[*i] (with its value: attached, or the next argument, which *i then
// moves to). kContinue when it is fine.
int ArgParser::parse_flag(const std::vector<std::string>& args, size_t* i) {
  const std::string& a = args[*i];
  // Split into the flag as written, the option, and an attached value if any.
  Option* o = nullptr;
  std::string shown;  // the flag as the user wrote it, for messages
  std::string value;
  bool has_value = false;
  if (a[1] == '-') {
    size_t eq = a.find('=');
    shown = a.substr(0, eq);
    o = find_long(std::string_view(shown).substr(2));
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      has_value = true;
    }
  } else {
    o = find_single_dash(a, &shown, &value, &has_value);
  }
  if (!o) return usage_error("unknown flag '" + shown + "'");

  bool is_bool = std::holds_alternative<bool*>(o->target);
  if (is_bool && has_value) return usage_error("flag '" + shown + "' takes no value");
  if (!is_bool && !has_value) {
    if (*i + 1 >= args.size()) return usage_error("flag '" + shown + "' needs a value");
    value = args[++*i];
  }
  std::string why = o->test ? o->test(value) : "";
  if (why.empty()) why = assign(*o, value);
  if (!why.empty()) return usage_error("bad value '" + value + "' for '" + shown + "': " + why);
  o->seen = true;
  return kContinue;
}

int ArgParser::parse(const std::vector<std::string>& args) {
  if (asks_for_help(args)) {
    std::fputs(help().c_str(), stdout);
    std::fflush(stdout);
    return kExitOk;
  }
  size_t n_positional = 0;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    bool is_flag = !flags_done && a.size() >= 2 && a[0] == '-';
    if (!flags_done && a == "--") {
      flags_done = true;
      continue;
    }
    if (!is_flag) {
      if (n_positional >= positionals_.size())
        return usage_error("unexpected argument '" + a + "'");
      *positionals_[n_positional++].out = a;
      continue;
    }
    if (int rc = parse_flag(args, &i); rc != kContinue) return rc;
  }

  for (const Option& o : options_)
    if (o.is_required && !o.seen)
      return usage_error("missing required flag '--" + o.long_name + "'");
  for (size_t k = n_positional; k < positionals_.size(); ++k)
    if (positionals_[k].required) return usage_error("missing " + positionals_[k].metavar);
  return kContinue;
}

// ---- help -----------------------------------------------------------------------------

std::string ArgParser::help() const {
  constexpr size_t kHelpColumns = 80;
  std::string s = "usage: ember " + command_ + " " + usage_ + "\n\n" + summary_ + "\n";

  struct Row {
    std::string left, right;
  };
  std::vector<Row> rows;
  for (const Positional& p : positionals_) rows.push_back({"  " + p.metavar, p.help});
  size_t n_positional_rows = rows.size();
  for (const Option& o : options_) {
    std::string left = "  ";
    if (o.short_name) left += std::string("-") + o.short_name + ", ";
    for (const std::string& al : o.aliases) left += "-" + al + ", ";
    if (left.size() == 2) left = "      ";  // long name only: aligned with "-x, --name"
    left += "--" + o.long_name;
    if (!o.metavar.empty()) left += " " + o.metavar;
    std::string right = o.help;
    if (o.is_required)
      right += " (required)";
    else if (!o.default_shown.empty())
      right += " (default: " + o.default_shown + ")";
    rows.push_back({left, right});
  }
  rows.push_back({"  -h, --help", "show this help and exit"});

  size_t width = 0;
  for (const Row& r : rows) width = std::max(width, r.left.size());
  width = std::min<size_t>(width + 2, 30);
  auto emit = [&](const Row& r) {
    s += r.left;
    if (r.left.size() + 2 > width) {
      s += '\n';
      s.append(width, ' ');
    } else {
      s.append(width - r.left.size(), ' ');
    }
    // Word-wrap the description to the terminal-friendly 80 columns.
    const size_t room = kHelpColumns > width + 20 ? kHelpColumns - width : 20;
    std::string_view rest = r.right;
    while (rest.size() > room) {
      size_t cut = rest.rfind(' ', room);
      if (cut == std::string_view::npos || cut == 0) cut = rest.find(' ');
      if (cut == std::string_view::npos) break;
      s += rest.substr(0, cut);
      s += '\n';
      s.append(width, ' ');
      rest.remove_prefix(cut + 1);
    }
    s += rest;
    s += '\n';
  };
  if (n_positional_rows > 0) {
    s += "\narguments:\n";
    for (size_t i = 0; i < n_positional_rows; ++i) emit(rows[i]);
  }
  s += "\noptions:\n";
  for (size_t i = n_positional_rows; i < rows.size(); ++i) emit(rows[i]);
  if (!epilog_.empty()) s += "\n" + epilog_;
  if (!s.empty() && s.back() != '\n') s += "\n";
  return s;
}

}  // namespace ember::cli
