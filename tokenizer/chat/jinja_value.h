// Values of the Jinja interpreter (tokenizer/chat/): what templates compute with.
//
// The kinds mirror the Python objects Jinja2 hands a chat template: Undefined (Jinja2's
// default Undefined: prints "", falsy, iterates as empty), None, bool, int, float, str,
// list (tuples are lists), dict (string keys, insertion order, as JSON objects give),
// namespace (a dict whose attributes `set ns.x = ...` may assign) and callables (macros and
// the built-in functions). Strings, lists and dicts share their storage when copied:
// templates cannot mutate them (Hugging Face renders in an immutable sandbox), and copies
// stay cheap however large the value; a namespace is the one mutable object, and sharing is
// what makes `set ns.x` visible outside a loop.
//
// Every string made is counted (StringBytesMade, per thread): the evaluator bounds the
// total work of a render with it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace ember::jinja {

constexpr size_t kMaxReprBytes = 16u << 20;

class Value;
using ValueList = std::vector<Value>;

struct ValueDict {
  std::vector<std::pair<std::string, Value>> items;  // insertion order
  const Value* Find(std::string_view key) const;
  void Set(std::string key, Value v);
};

struct Callable;  // jinja_eval.h: a macro or a built-in function

class Value {
 public:
  enum class Kind : uint8_t { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() = default;  // undefined
  static Value Undefined(std::string name = {});
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value List(ValueList items);
  static Value Dict(ValueDict d);
  static Value Namespace(ValueDict d);
  static Value Function(std::shared_ptr<const Callable> c);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_mapping() const { return kind_ == Kind::kDict || kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const;  // string; the name of an undefined
  const ValueList& list() const { return *list_; }
  const ValueDict& dict() const { return *dict_; }            // dict or namespace
  ValueDict& namespace_dict() const { return *dict_; }        // namespaces only: mutable
  const Callable& callable() const { return *fn_; }

  bool Truthy() const;
  // Member `key` of a dict or namespace: Undefined when absent.
  Value Get(std::string_view key) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<const Callable> fn_;
};

// Bytes of all strings made by Value::String on this thread so far.
uint64_t StringBytesMade();

// Python's str(): what {{ v }} prints ("" for undefined, "None", "True", 1.5, [1, 'a']).
// The text of a list or dict stops growing a little past kMaxReprBytes (the caller's
// size check then fails), so printing a huge structure stays bounded.
std::string ToString(const Value& v);
// Python's repr() (strings quoted: what str() of a list prints for its items).
std::string Repr(const Value& v);
// Python's float repr: shortest round-trip digits, "1.0", "1e+20", "inf", "nan".
std::string FloatRepr(double f);
// json.dumps(v, ensure_ascii=False) with ", " / ": " separators, or with indent >= 0:
// newlines, `indent` spaces per level and "," / ": " (Python's choice). Undefined is an
// error (json.dumps cannot serialise it), a callable too.
Status ToJson(const Value& v, int indent, std::string* out);

// Python ==: numbers by value (1 == 1.0 == True), strings, lists and dicts deeply.
bool Equal(const Value& a, const Value& b);
// Python <: numbers with numbers, strings with strings (bytewise = code point order for
// UTF-8), lists lexicographically; false and *comparable = false otherwise.
bool Less(const Value& a, const Value& b, bool* comparable);

// The kind's name in error messages ("string", "list", "undefined", ...).
const char* KindName(const Value& v);
// Length in code points (Python len of a str), items of a list or dict; -1 otherwise.
int64_t Length(const Value& v);
// The code points of a UTF-8 string, each as its own string (Python iterates a str so).
std::vector<std::string> SplitCodePoints(std::string_view s);

}  // namespace ember::jinja
