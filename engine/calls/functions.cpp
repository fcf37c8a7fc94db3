#include "engine/calls/functions.h"

#include <memory>
#include <string_view>

#include "core/json.h"
#include "core/mapped_file.h"
#include "engine/model/model.h"
#include "loader/gguf.h"
#include "tokenizer/tokenizer.h"

namespace ember {

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::kString: return "str";
    case ParamType::kInt: return "int";
    case ParamType::kFloat: return "float";
  }
  return "?";
}

int32_t ResolveSingleToken(const Tokenizer& tok, std::string_view text) {
  if (text.empty()) return -1;
  const int32_t id = tok.PieceToId(text);
  if (id >= 0) return id;
  std::vector<int32_t> ids;
  if (!tok.Encode(text, /*add_bos=*/false, /*parse_special=*/true, &ids).ok()) return -1;
  if (ids.size() != 1) return -1;
  // Byte fallback or <unk> would "spell" anything; only a real piece counts.
  if (ids[0] == tok.unk_id() || tok.type(ids[0]) == TokenType::kByte) return -1;
  return ids[0];
}

namespace {

// Field helpers: each error names the source and the JSON path of the field.
struct Ctx {
  std::string source;
  Status Bad(const std::string& path, const std::string& what) const {
    return BadFormat(source + ": " + path + ": " + what);
  }
};

Status get_string(const Ctx& c, const Json& obj, const std::string& path, const char* key, bool required,
                  std::string* out) {
  const Json* v = JsonFind(obj, key);
  if (!v) return required ? c.Bad(path, std::string("missing \"") + key + "\"") : Status::Ok();
  if (!v->is_string()) return c.Bad(path + "." + key, "expected a string");
  *out = v->get<std::string>();
  return Status::Ok();
}

Status parse_type(const Ctx& c, const std::string& path, const std::string& t, ParamType* out) {
  if (t == "str" || t == "string") *out = ParamType::kString;
  else if (t == "int" || t == "integer") *out = ParamType::kInt;
  else if (t == "float" || t == "number") *out = ParamType::kFloat;
  else return c.Bad(path, "unsupported type '" + t + "' (expected str, int or float)");
  return Status::Ok();
}

// Resolves `text` to one token id, checking an optional declared id.
Status resolve(const Ctx& c, const Tokenizer& tok, const std::string& path, const std::string& text,
               const Json* declared_id, int32_t* out) {
  if (text.empty()) return c.Bad(path, "empty token text");
  const int32_t id = ResolveSingleToken(tok, text);
  if (id < 0) return NotFound(c.source + ": " + path + ": token '" + text + "' is not in the model's vocabulary");
  if (declared_id) {
    int64_t declared = 0;
    if (!JsonInt64(*declared_id, &declared)) return c.Bad(path + " id", "expected an integer token id");
    if (declared != id)
      return c.Bad(path, "token '" + text + "' has id " + std::to_string(id) + " in the vocabulary but " +
                             std::to_string(declared) + " in the file");
  }
  *out = id;
  return Status::Ok();
}

// One entry of "functions": name, token, description, parameters; the token resolved
// to its id (checks against the end token and the other functions are the caller's).
Status parse_function(const Ctx& c, const Tokenizer& tok, const Json& f, const std::string& path,
                      FunctionSpec* spec) {
  if (!f.is_object()) return c.Bad(path, "expected an object");
  EMBER_RETURN_IF_ERROR(get_string(c, f, path, "name", true, &spec->name));
  if (spec->name.empty()) return c.Bad(path + ".name", "empty name");
  const std::string fpath = path + " (" + spec->name + ")";
  EMBER_RETURN_IF_ERROR(get_string(c, f, fpath, "token", true, &spec->token));
  EMBER_RETURN_IF_ERROR(get_string(c, f, fpath, "description", false, &spec->description));
  const Json* params = JsonFind(f, "parameters");
  if (!params) return c.Bad(fpath, "missing \"parameters\"");
  if (!params->is_array()) return c.Bad(fpath + ".parameters", "expected an array");
  for (size_t j = 0; j < params->size(); ++j) {
    const std::string ppath = fpath + ".parameters[" + std::to_string(j) + "]";
    const Json& p = (*params)[j];
    if (!p.is_object()) return c.Bad(ppath, "expected an object with \"name\" and \"type\"");
    FunctionParam fp;
    std::string type;
    EMBER_RETURN_IF_ERROR(get_string(c, p, ppath, "name", true, &fp.name));
    EMBER_RETURN_IF_ERROR(get_string(c, p, ppath, "type", true, &type));
    if (fp.name.empty()) return c.Bad(ppath + ".name", "empty name");
    EMBER_RETURN_IF_ERROR(parse_type(c, ppath + ".type", type, &fp.type));
    for (const FunctionParam& q : spec->params)
      if (q.name == fp.name) return c.Bad(ppath, "parameter '" + fp.name + "' appears twice");
    spec->params.push_back(std::move(fp));
  }
  return resolve(c, tok, fpath + ".token", spec->token, JsonFind(f, "token_id"), &spec->token_id);
}

}  // namespace

Status FunctionRegistry::Parse(std::string_view json, std::string_view source, const Tokenizer& tok,
                               FunctionRegistry* out) {
  if (!out) return InvalidArgument("FunctionRegistry::Parse: out is null");
  Ctx c{source.empty() ? std::string("functions") : std::string(source)};
  Json root;
  EMBER_RETURN_IF_ERROR(ParseJson(json, c.source, &root));

  FunctionRegistry r;
  r.source_ = c.source;
  const Json* list = &root;
  if (root.is_object()) {
    list = JsonFind(root, "functions");
    if (!list) return c.Bad("top level", "missing \"functions\"");
  }
  if (!list->is_array()) return c.Bad("functions", "expected an array of functions");
  if (list->size() == 0) return c.Bad("functions", "no functions");

  // End token: "nexa_end" or "end_token", default <nexa_end>.
  if (root.is_object()) {
    const Json* end = JsonFind(root, "end_token");
    const char* end_key = "end_token";
    if (!end) {
      end = JsonFind(root, "nexa_end");
      end_key = "nexa_end";
    }
    if (end) {
      if (!end->is_string()) return c.Bad(end_key, "expected a string");
      r.end_text_ = end->get<std::string>();
    }
    const Json* end_id = JsonFind(root, "end_token_id");
    if (!end_id) end_id = JsonFind(root, "nexa_end_id");
    EMBER_RETURN_IF_ERROR(resolve(c, tok, end_key, r.end_text_, end_id, &r.end_id_));
  } else {
    EMBER_RETURN_IF_ERROR(resolve(c, tok, "end token", r.end_text_, nullptr, &r.end_id_));
  }

  for (size_t i = 0; i < list->size(); ++i) {
    const std::string path = "functions[" + std::to_string(i) + "]";
    FunctionSpec spec;
    EMBER_RETURN_IF_ERROR(parse_function(c, tok, (*list)[i], path, &spec));
    const std::string fpath = path + " (" + spec.name + ")";
    if (spec.token_id == r.end_id_)
      return c.Bad(fpath + ".token", "token '" + spec.token + "' is the end token");
    for (const FunctionSpec& g : r.functions_) {
      if (g.token_id == spec.token_id)
        return c.Bad(fpath + ".token", "token '" + spec.token + "' is already used by function '" + g.name + "'");
      if (g.name == spec.name) return c.Bad(fpath + ".name", "function name '" + spec.name + "' appears twice");
    }
    r.functions_.push_back(std::move(spec));
  }

  if (root.is_object()) {
    if (const Json* nf = JsonFind(root, "no_function")) {
      if (!nf->is_object()) return c.Bad("no_function", "expected an object with \"token\"");
      EMBER_RETURN_IF_ERROR(get_string(c, *nf, "no_function", "token", true, &r.no_function_text_));
      r.no_function_name_ = "no_function";
      EMBER_RETURN_IF_ERROR(get_string(c, *nf, "no_function", "name", false, &r.no_function_name_));
      EMBER_RETURN_IF_ERROR(
          resolve(c, tok, "no_function.token", r.no_function_text_, JsonFind(*nf, "token_id"), &r.no_function_id_));
      if (r.no_function_id_ == r.end_id_ || r.IndexOfToken(r.no_function_id_) >= 0)
        return c.Bad("no_function.token", "token '" + r.no_function_text_ + "' is already the end token or a function's");
    }
  }
  *out = std::move(r);
  return Status::Ok();
}

Status FunctionRegistry::FromFile(const std::string& path, const Tokenizer& tok, FunctionRegistry* out) {
  // The loader's own file access: NOT_FOUND for a missing path, one line for a directory
  // or an unreadable file, as for a model.
  std::unique_ptr<MappedFile> file;
  EMBER_RETURN_IF_ERROR(MappedFile::Open(path, &file));
  const auto* bytes = reinterpret_cast<const char*>(file->data());
  return Parse(std::string_view(bytes, file->size()), path, tok, out);
}

Status FunctionRegistry::FromModel(const Model& model, FunctionRegistry* out) {
  const GgufValue* v = model.gguf().Find(kMetadataKey);
  if (!v) return NotFound(std::string("the model has no function registry (metadata key ") + kMetadataKey + ")");
  if (v->type != GgufType::kString) return BadFormat(std::string("metadata key ") + kMetadataKey + " is not a string");
  return Parse(v->str, std::string("metadata ") + kMetadataKey, model.tokenizer(), out);
}

Status FunctionRegistry::SetEndToken(std::string_view text, const Tokenizer& tok) {
  const int32_t id = ResolveSingleToken(tok, text);
  if (id < 0) return NotFound("end token '" + std::string(text) + "' is not in the model's vocabulary");
  if (IndexOfToken(id) >= 0 || id == no_function_id_)
    return InvalidArgument("end token '" + std::string(text) + "' is a functional token");
  end_text_ = std::string(text);
  end_id_ = id;
  return Status::Ok();
}

int32_t FunctionRegistry::IndexOfToken(int32_t id) const {
  for (size_t i = 0; i < functions_.size(); ++i)
    if (functions_[i].token_id == id) return static_cast<int32_t>(i);
  return -1;
}

int32_t FunctionRegistry::IndexOfName(std::string_view name) const {
  for (size_t i = 0; i < functions_.size(); ++i)
    if (functions_[i].name == name) return static_cast<int32_t>(i);
  return -1;
}

}  // namespace ember
