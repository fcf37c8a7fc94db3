// The Jinja parser (jinja_parser.h): recursive descent over the lexer's tokens.
#include "tokenizer/chat/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

namespace ember::jinja {
namespace {

// Statements Jinja2 has and this interpreter does not: named in the Unsupported error.
constexpr const char* kUnsupportedStatements[] = {"include", "extends", "import", "from",  "call",
                                                  "raw",     "block",   "with",   "autoescape", "do",
                                                  "trans",   "pluralize"};

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}
  Status ParseTemplate(Body* out);

 private:
  // ---- tokens ----
  const Token& Cur() const { return t_[pos_]; }
  const Token& Peek(size_t k = 1) const { return t_[std::min(pos_ + k, t_.size() - 1)]; }
  void Skip() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  bool IsOp(const char* op) const { return Cur().kind == TokenKind::kOp && Cur().text == op; }
  bool IsName(const char* name) const { return Cur().kind == TokenKind::kName && Cur().text == name; }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Skip();
    return true;
  }
  bool SkipName(const char* name) {
    if (!IsName(name)) return false;
    Skip();
    return true;
  }
  Status Fail(const std::string& what) const { return BadFormat(Where(Cur().line, Cur().column) + what); }
  Status Expect(const char* op);
  Status ExpectBlockEnd(const char* statement);
  Status ExpectName(std::string* out);
  std::string Describe(const Token& t) const;

  // ---- statements ----
  Status ParseBody(std::initializer_list<const char*> ends, Body* out, std::string* ended_by);
  Status ParseStatement(Body* out);
  Status ParseIf(int line, Body* out);
  Status ParseFor(int line, Body* out);
  Status ParseSet(int line, Body* out);
  Status ParseMacro(int line, Body* out);
  Status ParseFilterBlock(int line, Body* out);
  Status ParseBlockBody(const char* end, Body* out);

  // ---- expressions, lowest precedence first ----
  Status ParseExpr(ExprPtr* out, bool with_cond = true);
  Status ParseTuple(ExprPtr* out, bool with_cond = true);
  Status ParseOr(ExprPtr* out);
  Status ParseAnd(ExprPtr* out);
  Status ParseNot(ExprPtr* out);
  Status ParseCompare(ExprPtr* out);
  Status ParseMath1(ExprPtr* out);
  Status ParseConcat(ExprPtr* out);
  Status ParseMath2(ExprPtr* out);
  Status ParsePow(ExprPtr* out);
  Status ParseFiltered(ExprPtr* out);
  using Level = Status (Parser::*)(ExprPtr*);
  Status ParseLeftAssoc(ExprPtr* out, Level next, std::initializer_list<const char*> ops);
  Status ParseUnary(ExprPtr* out, bool with_filter);
  Status ParsePrimary(ExprPtr* out);
  Status ParseSequence(const char* close, ExprPtr* out);
  Status ParseDictLiteral(ExprPtr* out);
  Status ParsePostfix(ExprPtr* inout);
  Status ParseSubscript(ExprPtr* inout);
  Status ParseFilterExpr(ExprPtr* inout);
  Status ParseFilter(ExprPtr input, ExprPtr* out);
  Status ParseTest(ExprPtr* inout);
  Status ParseCallArgs(std::vector<Arg>* out);

  ExprPtr Make(Expr::Kind kind, int line, std::string name = {}) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    e->name = std::move(name);
    return e;
  }
  // *lhs = (*lhs op rhs).
  Status Binary(std::string op, ExprPtr rhs, int line, ExprPtr* lhs) {
    ExprPtr e = Make(Expr::Kind::kBinary, line, std::move(op));
    e->items.push_back(std::move(*lhs));
    e->items.push_back(std::move(rhs));
    *lhs = std::move(e);
    return Deepen(lhs->get());
  }
  // Sets e's depth from its operands; chains such as 1 + 1 + ... or a.b.c... grow the
  // tree without recursing in the parser, and evaluating them would.
  Status Deepen(Expr* e) {
    for (const ExprPtr& c : e->items)
      if (c) e->depth = std::max(e->depth, c->depth + 1);
    for (const Arg& a : e->args) e->depth = std::max(e->depth, a.value->depth + 1);
    if (e->depth > kMaxExprDepth) return Fail("expression nested deeper than " + std::to_string(kMaxExprDepth));
    return Status::Ok();
  }
  NodePtr MakeNode(Node::Kind kind, int line) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->line = line;
    return n;
  }

  // Counts nesting; fails past kMaxNesting.
  struct Depth {
    explicit Depth(Parser* p) : p(p) { ++p->depth_; }
    ~Depth() { --p->depth_; }
    Status Check() const {
      return p->depth_ > kMaxNesting ? p->Fail("nesting deeper than " + std::to_string(kMaxNesting)) : Status::Ok();
    }
    Parser* p;
  };

  std::vector<Token> t_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;  // for break / continue
};

std::string Parser::Describe(const Token& t) const {
  switch (t.kind) {
    case TokenKind::kEof: return "end of template";
    case TokenKind::kText: return "template text";
    case TokenKind::kVarBegin: return "'{{'";
    case TokenKind::kVarEnd: return "'}}'";
    case TokenKind::kBlockBegin: return "'{%'";
    case TokenKind::kBlockEnd: return "'%}'";
    case TokenKind::kString: return "string literal";
    default: return "'" + t.text + "'";
  }
}

Status Parser::Expect(const char* op) {
  if (SkipOp(op)) return Status::Ok();
  return Fail(std::string("expected '") + op + "', found " + Describe(Cur()));
}

Status Parser::ExpectBlockEnd(const char* statement) {
  if (Cur().kind == TokenKind::kBlockEnd) {
    Skip();
    return Status::Ok();
  }
  return Fail(std::string("expected '%}' to end '") + statement + "', found " + Describe(Cur()));
}

Status Parser::ExpectName(std::string* out) {
  if (Cur().kind != TokenKind::kName) return Fail("expected a name, found " + Describe(Cur()));
  *out = Cur().text;
  Skip();
  return Status::Ok();
}

Status Parser::ParseTemplate(Body* out) {
  std::string ended_by;
  EMBER_RETURN_IF_ERROR(ParseBody({}, out, &ended_by));
  return Status::Ok();
}

// Nodes up to one of the `ends` statements (consumed, its name in *ended_by) or, with no
// ends, to the end of the template.
Status Parser::ParseBody(std::initializer_list<const char*> ends, Body* out, std::string* ended_by) {
  Depth depth(this);
  EMBER_RETURN_IF_ERROR(depth.Check());
  while (true) {
    const Token& tok = Cur();
    if (tok.kind == TokenKind::kEof) {
      if (ends.size() == 0) return Status::Ok();
      return Fail(std::string("unexpected end of template: missing '{% ") + *ends.begin() + " %}'");
    }
    if (tok.kind == TokenKind::kText) {
      NodePtr n = MakeNode(Node::Kind::kText, tok.line);
      n->text = tok.text;
      out->push_back(std::move(n));
      Skip();
    } else if (tok.kind == TokenKind::kVarBegin) {
      NodePtr n = MakeNode(Node::Kind::kOutput, tok.line);
      Skip();
      EMBER_RETURN_IF_ERROR(ParseTuple(&n->expr));
      if (Cur().kind != TokenKind::kVarEnd) return Fail("expected '}}', found " + Describe(Cur()));
      Skip();
      out->push_back(std::move(n));
    } else if (tok.kind == TokenKind::kBlockBegin) {
      const Token& kw = Peek();
      for (const char* end : ends)
        if (kw.kind == TokenKind::kName && kw.text == end) {
          *ended_by = end;
          Skip();
          Skip();
          return Status::Ok();
        }
      Skip();
      EMBER_RETURN_IF_ERROR(ParseStatement(out));
    } else {
      return Fail("unexpected " + Describe(tok));
    }
  }
}

Status Parser::ParseStatement(Body* out) {
  const Token& kw = Cur();
  const int line = kw.line;
  if (kw.kind != TokenKind::kName) return Fail("expected a statement name after '{%', found " + Describe(kw));
  const std::string name = kw.text;
  for (const char* u : kUnsupportedStatements)
    if (name == u)
      return Unsupported("chat template: line " + std::to_string(line) + ": the '{% " + name +
                         " %}' statement is not supported");
  Skip();
  if (name == "if") return ParseIf(line, out);
  if (name == "for") return ParseFor(line, out);
  if (name == "set") return ParseSet(line, out);
  if (name == "macro") return ParseMacro(line, out);
  if (name == "filter") return ParseFilterBlock(line, out);
  if (name == "generation") {
    NodePtr n = MakeNode(Node::Kind::kScope, line);
    EMBER_RETURN_IF_ERROR(ExpectBlockEnd("generation"));
    n->bodies.emplace_back();
    EMBER_RETURN_IF_ERROR(ParseBlockBody("endgeneration", &n->bodies[0]));
    out->push_back(std::move(n));
    return Status::Ok();
  }
  if (name == "break" || name == "continue") {
    if (loop_depth_ == 0) return BadFormat(Where(kw.line, kw.column) + "'" + name + "' outside a for loop");
    out->push_back(MakeNode(name == "break" ? Node::Kind::kBreak : Node::Kind::kContinue, line));
    return ExpectBlockEnd(name.c_str());
  }
  if (name.rfind("end", 0) == 0 || name == "elif" || name == "else")
    return BadFormat(Where(kw.line, kw.column) + "unexpected '{% " + name + " %}' (no open block it ends)");
  return Unsupported("chat template: line " + std::to_string(line) + ": unknown statement '{% " + name + " %}'");
}

Status Parser::ParseBlockBody(const char* end, Body* out) {
  std::string ended_by;
  EMBER_RETURN_IF_ERROR(ParseBody({end}, out, &ended_by));
  return ExpectBlockEnd(end);
}

Status Parser::ParseIf(int line, Body* out) {
  NodePtr n = MakeNode(Node::Kind::kIf, line);
  while (true) {
    ExprPtr cond;
    EMBER_RETURN_IF_ERROR(ParseTuple(&cond));
    EMBER_RETURN_IF_ERROR(ExpectBlockEnd("if"));
    n->conds.push_back(std::move(cond));
    n->bodies.emplace_back();
    std::string ended_by;
    EMBER_RETURN_IF_ERROR(ParseBody({"endif", "elif", "else"}, &n->bodies.back(), &ended_by));
    if (ended_by == "elif") continue;
    if (ended_by == "else") {
      EMBER_RETURN_IF_ERROR(ExpectBlockEnd("else"));
      n->bodies.emplace_back();
      EMBER_RETURN_IF_ERROR(ParseBlockBody("endif", &n->bodies.back()));
    } else {
      EMBER_RETURN_IF_ERROR(ExpectBlockEnd("endif"));
    }
    break;
  }
  out->push_back(std::move(n));
  return Status::Ok();
}

Status Parser::ParseFor(int line, Body* out) {
  NodePtr n = MakeNode(Node::Kind::kFor, line);
  bool paren = SkipOp("(");
  do {
    std::string target;
    EMBER_RETURN_IF_ERROR(ExpectName(&target));
    n->targets.push_back(std::move(target));
  } while (SkipOp(","));
  if (paren) EMBER_RETURN_IF_ERROR(Expect(")"));
  if (!SkipName("in")) return Fail("expected 'in' in the for statement, found " + Describe(Cur()));
  EMBER_RETURN_IF_ERROR(ParseTuple(&n->expr, /*with_cond=*/false));
  if (SkipName("if")) EMBER_RETURN_IF_ERROR(ParseExpr(&n->cond));
  if (IsName("recursive"))
    return Unsupported("chat template: line " + std::to_string(line) + ": recursive for loops are not supported");
  EMBER_RETURN_IF_ERROR(ExpectBlockEnd("for"));
  n->bodies.resize(2);
  std::string ended_by;
  ++loop_depth_;
  Status st = ParseBody({"endfor", "else"}, &n->bodies[0], &ended_by);
  --loop_depth_;
  EMBER_RETURN_IF_ERROR(st);
  if (ended_by == "else") {
    EMBER_RETURN_IF_ERROR(ExpectBlockEnd("else"));
    EMBER_RETURN_IF_ERROR(ParseBlockBody("endfor", &n->bodies[1]));
  } else {
    EMBER_RETURN_IF_ERROR(ExpectBlockEnd("endfor"));
  }
  out->push_back(std::move(n));
  return Status::Ok();
}

Status Parser::ParseSet(int line, Body* out) {
  NodePtr n = MakeNode(Node::Kind::kSet, line);
  std::string first;
  EMBER_RETURN_IF_ERROR(ExpectName(&first));
  n->targets.push_back(first);
  if (SkipOp(".")) {
    EMBER_RETURN_IF_ERROR(ExpectName(&n->attr));
  } else {
    while (SkipOp(",")) {
      std::string more;
      EMBER_RETURN_IF_ERROR(ExpectName(&more));
      n->targets.push_back(std::move(more));
    }
  }
  if (Cur().kind == TokenKind::kBlockEnd && n->attr.empty() && n->targets.size() == 1) {
    Skip();  // {% set x %}...{% endset %}
    n->kind = Node::Kind::kSetBlock;
    n->bodies.emplace_back();
    EMBER_RETURN_IF_ERROR(ParseBlockBody("endset", &n->bodies[0]));
    out->push_back(std::move(n));
    return Status::Ok();
  }
  EMBER_RETURN_IF_ERROR(Expect("="));
  EMBER_RETURN_IF_ERROR(ParseTuple(&n->expr));
  EMBER_RETURN_IF_ERROR(ExpectBlockEnd("set"));
  out->push_back(std::move(n));
  return Status::Ok();
}

Status Parser::ParseMacro(int line, Body* out) {
  NodePtr n = MakeNode(Node::Kind::kMacro, line);
  EMBER_RETURN_IF_ERROR(ExpectName(&n->text));
  EMBER_RETURN_IF_ERROR(Expect("("));
  while (!IsOp(")")) {
    MacroParam p;
    EMBER_RETURN_IF_ERROR(ExpectName(&p.name));
    if (SkipOp("=")) EMBER_RETURN_IF_ERROR(ParseExpr(&p.default_value));
    n->params.push_back(std::move(p));
    if (!SkipOp(",")) break;
  }
  EMBER_RETURN_IF_ERROR(Expect(")"));
  EMBER_RETURN_IF_ERROR(ExpectBlockEnd("macro"));
  n->bodies.emplace_back();
  const int saved_loops = loop_depth_;
  loop_depth_ = 0;  // a loop around the definition does not make break valid inside it
  Status st = ParseBlockBody("endmacro", &n->bodies[0]);
  loop_depth_ = saved_loops;
  EMBER_RETURN_IF_ERROR(st);
  out->push_back(std::move(n));
  return Status::Ok();
}

Status Parser::ParseFilterBlock(int line, Body* out) {
  NodePtr n = MakeNode(Node::Kind::kFilterBlock, line);
  EMBER_RETURN_IF_ERROR(ParseFilter(nullptr, &n->expr));
  while (SkipOp("|")) {
    ExprPtr outer;
    EMBER_RETURN_IF_ERROR(ParseFilter(std::move(n->expr), &outer));
    n->expr = std::move(outer);
    EMBER_RETURN_IF_ERROR(Deepen(n->expr.get()));
  }
  EMBER_RETURN_IF_ERROR(ExpectBlockEnd("filter"));
  n->bodies.emplace_back();
  EMBER_RETURN_IF_ERROR(ParseBlockBody("endfilter", &n->bodies[0]));
  out->push_back(std::move(n));
  return Status::Ok();
}

// ---- expressions ----

Status Parser::ParseTuple(ExprPtr* out, bool with_cond) {
  const int line = Cur().line;
  ExprPtr first;
  EMBER_RETURN_IF_ERROR(ParseExpr(&first, with_cond));
  if (!IsOp(",")) {
    *out = std::move(first);
    return Status::Ok();
  }
  ExprPtr list = Make(Expr::Kind::kList, line);
  list->items.push_back(std::move(first));
  while (SkipOp(",")) {
    if (Cur().kind == TokenKind::kBlockEnd || Cur().kind == TokenKind::kVarEnd || IsOp(")")) break;
    ExprPtr item;
    EMBER_RETURN_IF_ERROR(ParseExpr(&item, with_cond));
    list->items.push_back(std::move(item));
  }
  *out = std::move(list);
  return Deepen(out->get());
}

Status Parser::ParseExpr(ExprPtr* out, bool with_cond) {
  Depth depth(this);
  EMBER_RETURN_IF_ERROR(depth.Check());
  EMBER_RETURN_IF_ERROR(ParseOr(out));
  while (with_cond && IsName("if")) {
    const int line = Cur().line;
    Skip();
    ExprPtr e = Make(Expr::Kind::kCond, line);
    ExprPtr cond, otherwise;
    EMBER_RETURN_IF_ERROR(ParseOr(&cond));
    if (SkipName("else")) EMBER_RETURN_IF_ERROR(ParseExpr(&otherwise));
    e->items.push_back(std::move(cond));
    e->items.push_back(std::move(*out));
    e->items.push_back(std::move(otherwise));
    *out = std::move(e);
    EMBER_RETURN_IF_ERROR(Deepen(out->get()));
  }
  return Status::Ok();
}

// One left-associative level: next (op next)*, where op is one of `ops` (operators, or
// keywords such as "or").
Status Parser::ParseLeftAssoc(ExprPtr* out, Level next, std::initializer_list<const char*> ops) {
  EMBER_RETURN_IF_ERROR((this->*next)(out));
  while (true) {
    const Token& t = Cur();
    const char* op = nullptr;
    for (const char* o : ops)
      if ((t.kind == TokenKind::kOp || t.kind == TokenKind::kName) && t.text == o) op = o;
    if (!op) return Status::Ok();
    const int line = t.line;
    Skip();
    ExprPtr rhs;
    EMBER_RETURN_IF_ERROR((this->*next)(&rhs));
    EMBER_RETURN_IF_ERROR(Binary(op, std::move(rhs), line, out));
  }
}

Status Parser::ParseOr(ExprPtr* out) { return ParseLeftAssoc(out, &Parser::ParseAnd, {"or"}); }
Status Parser::ParseAnd(ExprPtr* out) { return ParseLeftAssoc(out, &Parser::ParseNot, {"and"}); }
Status Parser::ParseMath1(ExprPtr* out) { return ParseLeftAssoc(out, &Parser::ParseConcat, {"+", "-"}); }
Status Parser::ParseConcat(ExprPtr* out) { return ParseLeftAssoc(out, &Parser::ParseMath2, {"~"}); }
Status Parser::ParseMath2(ExprPtr* out) { return ParseLeftAssoc(out, &Parser::ParsePow, {"*", "/", "//", "%"}); }
Status Parser::ParsePow(ExprPtr* out) { return ParseLeftAssoc(out, &Parser::ParseFiltered, {"**"}); }
Status Parser::ParseFiltered(ExprPtr* out) { return ParseUnary(out, true); }

Status Parser::ParseNot(ExprPtr* out) {
  if (!IsName("not")) return ParseCompare(out);
  Depth depth(this);
  EMBER_RETURN_IF_ERROR(depth.Check());
  ExprPtr e = Make(Expr::Kind::kUnary, Cur().line, "not");
  Skip();
  e->items.emplace_back();
  EMBER_RETURN_IF_ERROR(ParseNot(&e->items[0]));
  EMBER_RETURN_IF_ERROR(Deepen(e.get()));
  *out = std::move(e);
  return Status::Ok();
}

Status Parser::ParseCompare(ExprPtr* out) {
  EMBER_RETURN_IF_ERROR(ParseMath1(out));
  while (true) {
    const int line = Cur().line;
    std::string op;
    if (Cur().kind == TokenKind::kOp &&
        (IsOp("==") || IsOp("!=") || IsOp("<") || IsOp("<=") || IsOp(">") || IsOp(">="))) {
      op = Cur().text;
      Skip();
    } else if (IsName("in")) {
      op = "in";
      Skip();
    } else if (IsName("not") && Peek().kind == TokenKind::kName && Peek().text == "in") {
      op = "notin";
      Skip();
      Skip();
    } else {
      return Status::Ok();
    }
    ExprPtr rhs;
    EMBER_RETURN_IF_ERROR(ParseMath1(&rhs));
    EMBER_RETURN_IF_ERROR(Binary(op, std::move(rhs), line, out));
  }
}

Status Parser::ParseUnary(ExprPtr* out, bool with_filter) {
  Depth depth(this);
  EMBER_RETURN_IF_ERROR(depth.Check());
  if (IsOp("-") || IsOp("+")) {
    ExprPtr e = Make(Expr::Kind::kUnary, Cur().line, Cur().text);
    Skip();
    e->items.emplace_back();
    EMBER_RETURN_IF_ERROR(ParseUnary(&e->items[0], false));
    EMBER_RETURN_IF_ERROR(Deepen(e.get()));
    *out = std::move(e);
  } else {
    EMBER_RETURN_IF_ERROR(ParsePrimary(out));
  }
  EMBER_RETURN_IF_ERROR(ParsePostfix(out));
  if (with_filter) EMBER_RETURN_IF_ERROR(ParseFilterExpr(out));
  return Status::Ok();
}

Status Parser::ParsePrimary(ExprPtr* out) {
  const Token& tok = Cur();
  const int line = tok.line;
  switch (tok.kind) {
    case TokenKind::kName: {
      const std::string& n = tok.text;
      ExprPtr e = Make(Expr::Kind::kLiteral, line);
      if (n == "true" || n == "True") {
        e->value = Value::Bool(true);
      } else if (n == "false" || n == "False") {
        e->value = Value::Bool(false);
      } else if (n == "none" || n == "None") {
        e->value = Value::None();
      } else {
        e = Make(Expr::Kind::kName, line, n);
      }
      Skip();
      *out = std::move(e);
      return Status::Ok();
    }
    case TokenKind::kString: {
      std::string s;
      while (Cur().kind == TokenKind::kString) {  // adjacent literals concatenate
        s += Cur().text;
        Skip();
      }
      *out = Make(Expr::Kind::kLiteral, line);
      (*out)->value = Value::String(std::move(s));
      return Status::Ok();
    }
    case TokenKind::kInt:
    case TokenKind::kFloat:
      *out = Make(Expr::Kind::kLiteral, line);
      (*out)->value = tok.kind == TokenKind::kInt ? Value::Int(tok.i) : Value::Float(tok.f);
      Skip();
      return Status::Ok();
    default: break;
  }
  if (SkipOp("(")) {
    if (SkipOp(")")) {  // the empty tuple
      *out = Make(Expr::Kind::kList, line);
      return Status::Ok();
    }
    EMBER_RETURN_IF_ERROR(ParseTuple(out));
    return Expect(")");
  }
  if (SkipOp("[")) return ParseSequence("]", out);
  if (SkipOp("{")) return ParseDictLiteral(out);
  return Fail("unexpected " + Describe(tok) + " in an expression");
}

Status Parser::ParseSequence(const char* close, ExprPtr* out) {
  *out = Make(Expr::Kind::kList, Cur().line);
  while (!IsOp(close)) {
    ExprPtr item;
    EMBER_RETURN_IF_ERROR(ParseExpr(&item));
    (*out)->items.push_back(std::move(item));
    if (!SkipOp(",")) break;
  }
  EMBER_RETURN_IF_ERROR(Deepen(out->get()));
  return Expect(close);
}

Status Parser::ParseDictLiteral(ExprPtr* out) {
  *out = Make(Expr::Kind::kDict, Cur().line);
  while (!IsOp("}")) {
    ExprPtr key, value;
    EMBER_RETURN_IF_ERROR(ParseExpr(&key));
    EMBER_RETURN_IF_ERROR(Expect(":"));
    EMBER_RETURN_IF_ERROR(ParseExpr(&value));
    (*out)->items.push_back(std::move(key));
    (*out)->items.push_back(std::move(value));
    if (!SkipOp(",")) break;
  }
  EMBER_RETURN_IF_ERROR(Deepen(out->get()));
  return Expect("}");
}

Status Parser::ParsePostfix(ExprPtr* inout) {
  while (true) {
    EMBER_RETURN_IF_ERROR(Deepen(inout->get()));
    const int line = Cur().line;
    if (SkipOp(".")) {
      if (Cur().kind == TokenKind::kInt) {  // x.0 is x[0]
        ExprPtr e = Make(Expr::Kind::kSubscript, line);
        ExprPtr index = Make(Expr::Kind::kLiteral, line);
        index->value = Value::Int(Cur().i);
        Skip();
        e->items.push_back(std::move(*inout));
        e->items.push_back(std::move(index));
        *inout = std::move(e);
        continue;
      }
      ExprPtr e = Make(Expr::Kind::kAttr, line);
      EMBER_RETURN_IF_ERROR(ExpectName(&e->name));
      e->items.push_back(std::move(*inout));
      *inout = std::move(e);
    } else if (SkipOp("[")) {
      EMBER_RETURN_IF_ERROR(ParseSubscript(inout));
    } else if (IsOp("(")) {
      ExprPtr e = Make(Expr::Kind::kCall, line);
      e->items.push_back(std::move(*inout));
      EMBER_RETURN_IF_ERROR(ParseCallArgs(&e->args));
      *inout = std::move(e);
    } else {
      return Status::Ok();
    }
  }
}

// After '[': an index, or a slice start:stop:step with any part left out.
Status Parser::ParseSubscript(ExprPtr* inout) {
  const int line = Cur().line;
  ExprPtr parts[3];
  if (!IsOp(":")) {
    EMBER_RETURN_IF_ERROR(ParseExpr(&parts[0]));
    if (SkipOp("]")) {
      ExprPtr e = Make(Expr::Kind::kSubscript, line);
      e->items.push_back(std::move(*inout));
      e->items.push_back(std::move(parts[0]));
      *inout = std::move(e);
      return Status::Ok();
    }
  }
  EMBER_RETURN_IF_ERROR(Expect(":"));
  if (!IsOp("]") && !IsOp(":")) EMBER_RETURN_IF_ERROR(ParseExpr(&parts[1]));
  if (SkipOp(":") && !IsOp("]")) EMBER_RETURN_IF_ERROR(ParseExpr(&parts[2]));
  EMBER_RETURN_IF_ERROR(Expect("]"));
  ExprPtr e = Make(Expr::Kind::kSlice, line);
  e->items.push_back(std::move(*inout));
  for (ExprPtr& p : parts) e->items.push_back(std::move(p));
  *inout = std::move(e);
  return Status::Ok();
}

Status Parser::ParseFilterExpr(ExprPtr* inout) {
  while (true) {
    EMBER_RETURN_IF_ERROR(Deepen(inout->get()));
    if (SkipOp("|")) {
      ExprPtr e;
      EMBER_RETURN_IF_ERROR(ParseFilter(std::move(*inout), &e));
      *inout = std::move(e);
    } else if (IsName("is")) {
      Skip();
      EMBER_RETURN_IF_ERROR(ParseTest(inout));
    } else if (IsOp("(")) {
      ExprPtr e = Make(Expr::Kind::kCall, Cur().line);
      e->items.push_back(std::move(*inout));
      EMBER_RETURN_IF_ERROR(ParseCallArgs(&e->args));
      *inout = std::move(e);
    } else {
      return Status::Ok();
    }
  }
}

// A filter name (dotted names joined) and its optional arguments, applied to input.
Status Parser::ParseFilter(ExprPtr input, ExprPtr* out) {
  ExprPtr e = Make(Expr::Kind::kFilter, Cur().line);
  EMBER_RETURN_IF_ERROR(ExpectName(&e->name));
  while (SkipOp(".")) {
    std::string part;
    EMBER_RETURN_IF_ERROR(ExpectName(&part));
    e->name += "." + part;
  }
  if (IsOp("(")) EMBER_RETURN_IF_ERROR(ParseCallArgs(&e->args));
  e->items.push_back(std::move(input));
  *out = std::move(e);
  return Status::Ok();
}

// After 'is': [not] name, then (args) or one primary argument (`is divisibleby 3`).
Status Parser::ParseTest(ExprPtr* inout) {
  ExprPtr e = Make(Expr::Kind::kTest, Cur().line);
  e->negated = SkipName("not");
  EMBER_RETURN_IF_ERROR(ExpectName(&e->name));
  if (IsOp("(")) {
    EMBER_RETURN_IF_ERROR(ParseCallArgs(&e->args));
  } else {
    const Token& t = Cur();
    static const char* const kStops[] = {"else", "or", "and", "if", "in", "not", "is"};
    bool stop = t.kind == TokenKind::kName &&
                std::any_of(std::begin(kStops), std::end(kStops), [&](const char* s) { return t.text == s; });
    bool starts_primary = t.kind == TokenKind::kName || t.kind == TokenKind::kString || t.kind == TokenKind::kInt ||
                          t.kind == TokenKind::kFloat || IsOp("[") || IsOp("{");
    if (starts_primary && !stop) {
      Arg a;
      EMBER_RETURN_IF_ERROR(ParsePrimary(&a.value));
      EMBER_RETURN_IF_ERROR(ParsePostfix(&a.value));
      e->args.push_back(std::move(a));
    }
  }
  e->items.push_back(std::move(*inout));
  *inout = std::move(e);
  return Status::Ok();
}

Status Parser::ParseCallArgs(std::vector<Arg>* out) {
  EMBER_RETURN_IF_ERROR(Expect("("));
  while (!IsOp(")")) {
    if (IsOp("*") || IsOp("**"))
      return Unsupported("chat template: line " + std::to_string(Cur().line) +
                         ": *args / **kwargs in a call are not supported");
    Arg a;
    if (Cur().kind == TokenKind::kName && Peek().kind == TokenKind::kOp && Peek().text == "=") {
      a.name = Cur().text;
      Skip();
      Skip();
    }
    EMBER_RETURN_IF_ERROR(ParseExpr(&a.value));
    out->push_back(std::move(a));
    if (!SkipOp(",")) break;
  }
  return Expect(")");
}

}  // namespace

Status Parse(std::string_view source, Body* out) {
  std::vector<Token> tokens;
  EMBER_RETURN_IF_ERROR(Lex(source, &tokens));
  out->clear();
  return Parser(std::move(tokens)).ParseTemplate(out);
}

}  // namespace ember::jinja
