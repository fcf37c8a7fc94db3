// The Jinja lexer (jinja_lexer.h).
#include "tokenizer/chat/jinja_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ember::jinja {

std::string Where(int line, int column) {
  return "chat template: line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
}

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string NormalizeNewlines(std::string_view src) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

class Lexer {
 public:
  Lexer(std::string src, std::vector<Token>* out) : src_(std::move(src)), out_(out) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }
  Status Run();

 private:
  Status LexTag(char kind);
  Status LexInside(char kind, size_t* close_end, bool* strip_after, bool* keep_newline);
  Status LexString(size_t* pos, Token* t);
  void LexNumber(size_t* pos, Token* t);
  bool LexOp(size_t* pos, Token* t);
  void EmitText(std::string text, size_t tag_pos, char kind, char sign);
  void Emit(TokenKind k, size_t pos, std::string text = {});
  void LineCol(size_t pos, int* line, int* col) const;
  Status Error(size_t pos, const std::string& what) const;

  std::string src_;
  std::vector<Token>* out_;
  std::vector<size_t> line_starts_;  // offsets where lines begin (positions -> line, column)
  size_t pos_ = 0;
  bool line_starting_ = true;  // the last tag's close ended with a newline (lstrip_blocks)
};

void Lexer::LineCol(size_t pos, int* line, int* col) const {
  pos = std::min(pos, src_.size());
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) - 1;
  *line = static_cast<int>(it - line_starts_.begin()) + 1;
  *col = static_cast<int>(pos - *it) + 1;
}

Status Lexer::Error(size_t pos, const std::string& what) const {
  int line, col;
  LineCol(pos, &line, &col);
  return BadFormat(Where(line, col) + what);
}

void Lexer::Emit(TokenKind k, size_t pos, std::string text) {
  Token t;
  t.kind = k;
  t.text = std::move(text);
  LineCol(pos, &t.line, &t.column);
  out_->push_back(std::move(t));
}

// The text before a tag, with `{%-` stripping or lstrip_blocks applied.
void Lexer::EmitText(std::string text, size_t tag_pos, char kind, char sign) {
  if (sign == '-') {
    while (!text.empty() && IsSpace(text.back())) text.pop_back();
  } else if (kind != '{' && sign != '+') {
    size_t l_pos = text.rfind('\n');
    l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
    bool blank = l_pos < text.size() &&
                 std::all_of(text.begin() + static_cast<std::ptrdiff_t>(l_pos), text.end(), IsSpace);
    if ((l_pos > 0 || line_starting_) && blank) text.resize(l_pos);
  }
  if (!text.empty()) Emit(TokenKind::kText, tag_pos - text.size(), std::move(text));
}

Status Lexer::Run() {
  while (pos_ < src_.size()) {
    size_t p = pos_;
    while (true) {
      p = src_.find('{', p);
      if (p == std::string::npos || p + 1 >= src_.size()) {
        p = std::string::npos;
        break;
      }
      char k = src_[p + 1];
      if (k == '{' || k == '%' || k == '#') break;
      ++p;
    }
    if (p == std::string::npos) {
      Emit(TokenKind::kText, pos_, src_.substr(pos_));
      break;
    }
    char kind = src_[p + 1];
    char sign = p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+') ? src_[p + 2] : 0;
    EmitText(src_.substr(pos_, p - pos_), p, kind, sign);
    pos_ = p;
    EMBER_RETURN_IF_ERROR(LexTag(kind));
  }
  Emit(TokenKind::kEof, src_.size());
  return Status::Ok();
}

// One tag starting at pos_ ("{{", "{%" or "{#"); leaves pos_ after its close and the
// whitespace the close removes.
Status Lexer::LexTag(char kind) {
  const size_t open = pos_;
  size_t body = open + 2;
  if (body < src_.size() && (src_[body] == '-' || src_[body] == '+')) ++body;
  size_t close_end = 0;
  bool strip_after = false, keep_newline = false;
  if (kind == '#') {
    size_t c = src_.find("#}", body);
    if (c == std::string::npos) return Error(open, "unterminated comment '{#' (no '#}')");
    strip_after = c > body && src_[c - 1] == '-';
    keep_newline = c > body && src_[c - 1] == '+';
    close_end = c + 2;
  } else {
    Emit(kind == '{' ? TokenKind::kVarBegin : TokenKind::kBlockBegin, open);
    pos_ = body;
    EMBER_RETURN_IF_ERROR(LexInside(kind, &close_end, &strip_after, &keep_newline));
  }
  pos_ = close_end;
  if (strip_after) {
    while (pos_ < src_.size() && IsSpace(src_[pos_])) ++pos_;
  } else if (kind != '{' && !keep_newline && pos_ < src_.size() && src_[pos_] == '\n') {
    ++pos_;  // trim_blocks
  }
  line_starting_ = pos_ > 0 && src_[pos_ - 1] == '\n';
  return Status::Ok();
}

// Tokens of a {{ }} or {% %} tag from pos_ up to its close.
Status Lexer::LexInside(char kind, size_t* close_end, bool* strip_after, bool* keep_newline) {
  const char* close = kind == '{' ? "}}" : "%}";
  const size_t open = pos_;
  while (true) {
    while (pos_ < src_.size() && IsSpace(src_[pos_])) ++pos_;
    if (pos_ >= src_.size())
      return Error(open - 2, std::string("unterminated tag '") + (kind == '{' ? "{{" : "{%") + "' (no '" + close + "')");
    char sign = src_[pos_];
    if ((sign == '-' || (sign == '+' && kind == '%')) && src_.compare(pos_ + 1, 2, close) == 0) {
      *strip_after = sign == '-';
      *keep_newline = sign == '+';
      Emit(kind == '{' ? TokenKind::kVarEnd : TokenKind::kBlockEnd, pos_);
      *close_end = pos_ + 3;
      return Status::Ok();
    }
    if (src_.compare(pos_, 2, close) == 0) {
      Emit(kind == '{' ? TokenKind::kVarEnd : TokenKind::kBlockEnd, pos_);
      *close_end = pos_ + 2;
      return Status::Ok();
    }
    Token t;
    LineCol(pos_, &t.line, &t.column);
    const size_t start = pos_;
    char c = src_[pos_];
    if (c == '\'' || c == '"') {
      EMBER_RETURN_IF_ERROR(LexString(&pos_, &t));
    } else if (IsDigit(c)) {
      LexNumber(&pos_, &t);
    } else if (IsNameStart(c)) {
      while (pos_ < src_.size() && (IsNameStart(src_[pos_]) || IsDigit(src_[pos_]))) ++pos_;
      t.kind = TokenKind::kName;
      t.text = src_.substr(start, pos_ - start);
    } else if (!LexOp(&pos_, &t)) {
      return Error(pos_, std::string("unexpected character '") + c + "' in a tag");
    }
    out_->push_back(std::move(t));
  }
}

bool ReadHex(const std::string& s, size_t at, int n, uint32_t* cp) {
  if (at + static_cast<size_t>(n) > s.size()) return false;
  *cp = 0;
  for (int i = 0; i < n; ++i) {
    char h = s[at + static_cast<size_t>(i)];
    int d = IsDigit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
    if (d < 0) return false;
    *cp = *cp * 16 + static_cast<uint32_t>(d);
  }
  return true;
}

// A '...' or "..." literal with Python's escapes (\n \t \r \\ \' \" \xHH \uHHHH ...).
Status Lexer::LexString(size_t* pos, Token* t) {
  const size_t start = *pos;
  const char quote = src_[start];
  std::string value;
  size_t i = start + 1;
  for (; i < src_.size() && src_[i] != quote; ++i) {
    if (src_[i] != '\\' || i + 1 >= src_.size()) {
      value.push_back(src_[i]);
      continue;
    }
    char e = src_[++i];
    uint32_t cp = 0;
    int hex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (hex && ReadHex(src_, i + 1, hex, &cp) && cp <= 0x10FFFF) {
      AppendUtf8(cp, &value);
      i += static_cast<size_t>(hex);
      continue;
    }
    const char* from = "ntr\\'\"0abfv\n";
    const char* to = "\n\t\r\\'\"\0\a\b\f\v";
    const char* hit = std::strchr(from, e);
    if (e == '\n') continue;  // backslash-newline: line continuation
    if (hit && e) {
      value.push_back(to[hit - from]);
    } else {
      value.push_back('\\');  // unknown escape: kept, as Python does
      value.push_back(e);
    }
  }
  if (i >= src_.size()) return Error(start, "unterminated string literal");
  *pos = i + 1;
  t->kind = TokenKind::kString;
  t->text = std::move(value);
  return Status::Ok();
}

void Lexer::LexNumber(size_t* pos, Token* t) {
  const size_t start = *pos;
  size_t i = start;
  auto digits = [&] {
    while (i < src_.size() && (IsDigit(src_[i]) || (src_[i] == '_' && i + 1 < src_.size() && IsDigit(src_[i + 1]))))
      ++i;
  };
  digits();
  bool is_float = false;
  if (i + 1 < src_.size() && src_[i] == '.' && IsDigit(src_[i + 1])) {
    ++i;
    digits();
    is_float = true;
  }
  if (i < src_.size() && (src_[i] == 'e' || src_[i] == 'E')) {
    size_t j = i + 1;
    if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
    if (j < src_.size() && IsDigit(src_[j])) {
      i = j;
      digits();
      is_float = true;
    }
  }
  std::string text;
  for (size_t k = start; k < i; ++k)
    if (src_[k] != '_') text.push_back(src_[k]);
  *pos = i;
  t->text = text;
  if (is_float) {
    t->kind = TokenKind::kFloat;
    t->f = std::strtod(text.c_str(), nullptr);
    return;
  }
  t->kind = TokenKind::kInt;
  errno = 0;
  long long v = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) {  // beyond int64: a float, rather than a wrong integer
    t->kind = TokenKind::kFloat;
    t->f = std::strtod(text.c_str(), nullptr);
  }
  t->i = v;
}

bool Lexer::LexOp(size_t* pos, Token* t) {
  static const char* const kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
  for (const char* op : kTwo)
    if (src_.compare(*pos, 2, op) == 0) {
      t->kind = TokenKind::kOp;
      t->text = std::string(op, 2);
      *pos += 2;
      return true;
    }
  if (!std::strchr("+-*/%~<>=.,:|()[]{}", src_[*pos]) || src_[*pos] == 0) return false;
  t->kind = TokenKind::kOp;
  t->text = std::string(&src_[*pos], 1);
  ++*pos;
  return true;
}

}  // namespace

Status Lex(std::string_view source, std::vector<Token>* out) {
  out->clear();
  return Lexer(NormalizeNewlines(source), out).Run();
}

}  // namespace ember::jinja
