// Function registry for Octopus-style function calling: each function is one
// *functional token* of the vocabulary (`<nexa_3>`), with a name, an ordered list
// of typed parameters and a description. A call is generated as
//     ▁<nexa_K>('str arg', 42)<nexa_end>
// (see engine/calls/call.h for the grammar), so the registry maps token ids to functions.
//
// Source: a functions.json given by the user, or the same text stored in the GGUF
// metadata key `ember.functions`. Accepted layout (octopus-tiny's functions.json;
// unknown keys are ignored):
//   {
//     "functions": [
//       {"token": "<nexa_0>", "name": "take_photo", "description": "...",
//        "parameters": [{"name": "camera", "type": "str"}],
//        "token_id": 4}                       // optional: checked against the vocabulary
//     ],
//     "nexa_end": "<nexa_end>",               // optional end token (alias "end_token"),
//     "nexa_end_id": 36,                      //   default "<nexa_end>"; id optional, checked
//     "no_function": {"token": "<nexa_31>", "name": "no_function"}   // optional
//   }
// or just the array of functions. Parameter types: "str"/"string", "int"/"integer",
// "float"/"number".
//
// Token texts are resolved through the tokenizer: the text must be one vocabulary
// piece (or encode to exactly one token). Errors name the source, the function and
// the field: bad JSON (BadFormat with the offset), missing or mistyped fields
// (BadFormat), a token the vocabulary lacks (NotFound), a token_id that disagrees
// with the vocabulary, a token or name used twice, a functional token equal to the
// end token, an empty registry (BadFormat).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember {

class Tokenizer;
class Model;

enum class ParamType : int { kString = 0, kInt = 1, kFloat = 2 };
const char* param_type_name(ParamType t);  // "str", "int", "float"

struct FunctionParam {
  std::string name;
  ParamType type = ParamType::kString;
};

struct FunctionSpec {
  std::string name;         // "set_alarm"
  std::string token;        // "<nexa_3>"
  int32_t token_id = -1;    // resolved through the tokenizer
  std::string description;
  std::vector<FunctionParam> params;  // in call order
};

class FunctionRegistry {
 public:
  static constexpr const char* kMetadataKey = "ember.functions";
  static constexpr const char* kDefaultEndToken = "<nexa_end>";

  // Parses functions.json text. `source` names it in errors ("functions.json").
  static Status Parse(std::string_view json, std::string_view source, const Tokenizer& tok,
                      FunctionRegistry* out);
  static Status FromFile(const std::string& path, const Tokenizer& tok, FunctionRegistry* out);
  // From the model's GGUF metadata key ember.functions (NotFound when absent).
  static Status FromModel(const Model& model, FunctionRegistry* out);

  // Replaces the end token (e.g. a command-line override): NotFound when the
  // vocabulary lacks it, InvalidArgument when it is one of the functional tokens.
  Status SetEndToken(std::string_view text, const Tokenizer& tok);

  const std::vector<FunctionSpec>& functions() const { return functions_; }
  size_t size() const { return functions_.size(); }
  int32_t end_token_id() const { return end_id_; }
  const std::string& end_token() const { return end_text_; }
  // The optional "no function" answer: a token that stands for "no function fits"
  // (followed directly by the end token). -1 when the registry has none.
  int32_t no_function_token_id() const { return no_function_id_; }
  const std::string& no_function_token() const { return no_function_text_; }
  const std::string& no_function_name() const { return no_function_name_; }
  // Index of the function whose token is id, or -1.
  int32_t IndexOfToken(int32_t id) const;
  int32_t IndexOfName(std::string_view name) const;
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<FunctionSpec> functions_;
  std::string end_text_ = kDefaultEndToken;
  int32_t end_id_ = -1;
  std::string no_function_text_, no_function_name_;
  int32_t no_function_id_ = -1;
};

// Id of the single token spelled `text` (its piece, or the one token it encodes to),
// or -1.
int32_t ResolveSingleToken(const Tokenizer& tok, std::string_view text);

}  // namespace ember
