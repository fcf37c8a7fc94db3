// A small command-line flag parser for the `ember` subcommands.
//
// Each subcommand declares its flags against variables that already hold the
// defaults, then parses:
//
//   ArgParser p("run", "-m MODEL -p PROMPT [options]", "Generate text from a prompt.");
//   p.option("model", 'm', "MODEL", &model, "model file (GGUF)").required();
//   p.option("temp", 0, "T", &temp, "sampling temperature; 0: greedy").range(0.0, 100.0);
//   p.flag("verbose", 'v', &verbose, "timings and settings on stderr");
//   if (int rc = p.parse(args); rc != kContinue) return rc;
//
// Accepted forms: --name value, --name=value, -x value, -xvalue; `--` ends the flags.
// A flag may also have single-dash names of several letters (llama.cpp's -ctk), given
// with alias(): -ctk value, -ctk=value (matched before the one-letter -c).
// check() adds a test of the value beyond its type (e.g. a list of names).
// A value is taken from the next argument even when it starts with '-' ("-p -x").
// A repeated scalar flag keeps its last value; list flags (string lists) accumulate.
//
// Every problem is reported as ONE line on stderr,
//   ember run: unknown flag '--tmep' (see 'ember run --help')
// and parse() returns kExitUsage (2). --help / -h prints the help to stdout and
// parse() returns kExitOk (0).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ember::cli {

// Exit codes of the `ember` command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;        // model, file or engine failure
inline constexpr int kExitUsage = 2;          // bad command line
inline constexpr int kExitInterrupted = 130;  // SIGINT, as shells report it
// parse() result meaning "flags are fine, run the command".
inline constexpr int kContinue = -1;

class ArgParser {
 public:
  // One declared flag. The setters return *this so declarations read as one line.
  class Option {
   public:
    // Inclusive bounds for an int32 flag (uint64 flags take any value).
    Option& range(int64_t lo, int64_t hi);
    Option& range(int lo, int hi) { return range(int64_t{lo}, int64_t{hi}); }
    // Bounds for a float flag; lo_open: the lower bound itself is excluded.
    Option& range(double lo, double hi, bool lo_open = false);
    // The flag must be given.
    Option& required();
    // Text shown as "(default: TEXT)" instead of the variable's initial value;
    // "" hides the default.
    Option& default_text(std::string text);
    // A single-dash name of several letters: alias("ctk") accepts -ctk.
    Option& alias(std::string name);
    // Called with each value before it is stored: "" accepts it, else why it is bad
    // (reported as "bad value 'V' for 'FLAG': WHY").
    Option& check(std::function<std::string(std::string_view)> test);

   private:
    friend class ArgParser;
    using Target = std::variant<bool*, int32_t*, uint64_t*, float*, std::string*,
                                std::vector<std::string>*, std::vector<int32_t>*>;
    std::string long_name;
    char short_name = 0;
    std::string metavar;  // "" for a boolean flag
    std::string help;
    Target target;
    std::string default_shown;
    std::vector<std::string> aliases;
    std::function<std::string(std::string_view)> test;
    bool has_int_range = false, has_float_range = false, lo_open = false, is_required = false;
    int64_t ilo = 0, ihi = 0;
    double flo = 0, fhi = 0;
    bool seen = false;
  };

  // command: "run"; usage: the synopsis after "ember run"; summary: one sentence.
  ArgParser(std::string command, std::string usage, std::string summary);

  // A boolean switch: present = true. Takes no value.
  Option& flag(std::string long_name, char short_name, bool* out, std::string help);
  // Typed options; *out holds the default and receives the value.
  Option& option(std::string long_name, char short_name, std::string metavar, int32_t* out,
                 std::string help);
  Option& option(std::string long_name, char short_name, std::string metavar, uint64_t* out,
                 std::string help);
  Option& option(std::string long_name, char short_name, std::string metavar, float* out,
                 std::string help);
  Option& option(std::string long_name, char short_name, std::string metavar, std::string* out,
                 std::string help);
  // Repeatable: each occurrence appends one string.
  Option& option(std::string long_name, char short_name, std::string metavar,
                 std::vector<std::string>* out, std::string help);
  // Comma-separated integers ("1,2,3"; spaces around commas allowed); replaces *out.
  Option& option(std::string long_name, char short_name, std::string metavar,
                 std::vector<int32_t>* out, std::string help);
  // Positional arguments, in order; a positional not given stays as it was.
  // required: missing -> usage error. More positionals than declared -> usage error.
  void positional(std::string metavar, std::string* out, std::string help, bool required = true);
  // Free text printed after the options in --help (examples, notes).
  void epilog(std::string text);

  // kContinue when the command should run, else the exit code (help printed or error reported).
  int parse(const std::vector<std::string>& args);
  // Whether the flag (by long name) appeared on the command line.
  bool seen(std::string_view long_name) const;
  std::string help() const;
  // Prints "ember CMD: MESSAGE (see 'ember CMD --help')" and returns kExitUsage.
  int usage_error(std::string_view message) const;

 private:
  struct Positional {
    std::string metavar, help;
    std::string* out;
    bool required;
  };
  Option& add(std::string long_name, char short_name, std::string metavar, Option::Target target,
              std::string help, std::string default_shown);
  const Option* find_long(std::string_view name) const;
  Option* find_long(std::string_view name);
  Option* find_short(char c);
  // The option an argument that starts with one '-' names (an alias, else its letter);
  // *shown receives the flag as written, *value an attached value (has_value).
  Option* find_single_dash(const std::string& arg, std::string* shown, std::string* value, bool* has_value);
  // Steps of parse(): whether --help comes before `--`; one flag and its value.
  bool asks_for_help(const std::vector<std::string>& args);
  int parse_flag(const std::vector<std::string>& args, size_t* i);
  // Converts and stores a value; "" on success, else why it is bad.
  static std::string assign(Option& o, std::string_view value);

  std::string command_, usage_, summary_, epilog_;
  std::deque<Option> options_;  // deque: Option& handed out stay valid
  std::vector<Positional> positionals_;
};

// Parsing helpers shared by the subcommands; each returns false on a malformed value.
bool parse_int64(std::string_view s, int64_t* out);
bool parse_uint64(std::string_view s, uint64_t* out);
bool parse_float(std::string_view s, float* out);
// "1,2, 3" -> {1,2,3}; every element must fit int32. Empty or dangling commas are errors.
bool parse_int_list(std::string_view s, std::vector<int32_t>* out);

}  // namespace ember::cli
