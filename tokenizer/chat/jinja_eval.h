// The Jinja evaluator: renders a parsed template (jinja_ast.h) with a set of variables,
// with Jinja2 3.1's semantics as Hugging Face uses them:
//  - scopes: each for-loop iteration and each macro call has its own; `set` inside them is
//    not seen outside (hence namespace()); `set` inside if/elif/else is;
//  - Undefined (a missing variable, attribute, key or index) prints "", is falsy, iterates
//    as empty, has length 0 and `is defined` false; unlike Jinja2's default Undefined, an
//    attribute or item of an undefined is undefined too rather than an error (the brief's
//    choice: templates probing optional fields render rather than fail); arithmetic on an
//    undefined is an error naming it, as in Jinja2;
//  - `loop` (index, index0, revindex, revindex0, first, last, length, previtem, nextitem),
//    break / continue, for-else, macros with defaults and keyword arguments.
// Globals: raise_exception(msg), strftime_now(fmt) (the real clock, local time),
// range(...), namespace(...), dict(...).
//
// Caps, so that hostile templates stay bounded (each exceeded cap is an error naming it):
// output and any one string kMaxOutputBytes, any one list kMaxListItems (range() too),
// kMaxLoopIterations loop iterations in total, kMaxCallDepth nested macro calls, and
// kMaxStringWork bytes of strings made in all (checked at every output, loop iteration and
// macro call), which bounds the time a render can take.
// Errors carry the template line: "chat template: line L: ...".
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/chat/jinja_ast.h"
#include "tokenizer/chat/jinja_value.h"

namespace ember::jinja {

constexpr size_t kMaxOutputBytes = 16u << 20;
constexpr int64_t kMaxLoopIterations = 1'000'000;
constexpr int kMaxCallDepth = 64;
constexpr uint64_t kMaxStringWork = 256ull << 20;
constexpr size_t kMaxListItems = 100'000;

// Arguments of a call, a filter, a test or a method.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
  int line = 0;
  // Positional argument i, else keyword `name`, else nullptr.
  const Value* Get(size_t i, const char* name) const;
};

// A macro of the template or a built-in function.
struct Callable {
  std::string name;
  const Node* macro = nullptr;  // template macros
  std::function<Status(const CallArgs&, Value*)> builtin;
};

// "chat template: line L: what" as InvalidArgument (Unsupported with `unsupported`).
Status RuntimeError(int line, const std::string& what, bool unsupported = false);

// Filters, tests and methods (jinja_filters.cpp).
bool IsKnownFilter(const std::string& name);
bool IsKnownTest(const std::string& name);
Status ApplyFilter(const std::string& name, const Value& input, const CallArgs& args, Value* out);
Status ApplyTest(const std::string& name, const Value& input, const CallArgs& args, bool* out);
// obj.name(args) for the string, dict and list methods; *handled false when obj has no
// method of that name.
Status CallMethod(const Value& obj, const std::string& name, const CallArgs& args, Value* out, bool* handled);
// OutOfRange naming the cap when a string (output) of n bytes would exceed kMaxOutputBytes.
Status CheckSize(size_t n, int line);
// The same for a list of n items and kMaxListItems.
Status CheckItems(size_t n, int line);

// Unsupported naming the filter or test and its line, for one the interpreter lacks.
Status CheckSupported(const Body& body);

// Renders body with `vars` (plus the globals above) into *out.
Status Render(const Body& body, const ValueDict& vars, std::string* out);

}  // namespace ember::jinja
