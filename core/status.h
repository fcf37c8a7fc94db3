// Errors are values: every fallible library function returns a Status (code +
// human-readable message naming the file, key or tensor and what is wrong).
// No exception crosses a module boundary and nothing in the library calls exit().
#pragma once
#include <string>
#include <utility>

namespace ember {

enum class Code : int {
  kOk = 0,
  kInvalidArgument = 1,  // caller passed something unusable (bad flag value, bad id)
  kNotFound = 2,         // file, key or tensor absent
  kIo = 3,               // open/read/mmap failed
  kBadFormat = 4,        // file is malformed (magic, version, offsets, sizes)
  kUnsupported = 5,      // well-formed but not handled (architecture, tensor type)
  kOutOfRange = 6,       // e.g. prompt longer than the context
  kOutOfMemory = 7,
  kInternal = 8,
  kCancelled = 9,        // a callback asked to stop
};

const char* code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "bad format: model.gguf: tensor 'blk.0.attn_q.weight': data past end of file"
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Convenience constructors; the message should name the object and the problem.
inline Status InvalidArgument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIo, std::move(m)}; }
inline Status BadFormat(std::string m) { return {Code::kBadFormat, std::move(m)}; }
inline Status Unsupported(std::string m) { return {Code::kUnsupported, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }

}  // namespace ember

// Propagate a non-ok Status to the caller.
#define EMBER_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::ember::Status _st = (expr);              \
    if (!_st.ok()) return _st;                 \
  } while (0)
