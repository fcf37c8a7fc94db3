// The chat-template interpreter (tokenizer/chat/: a Jinja subset) on arbitrary
// templates and messages, as a GGUF's tokenizer.chat_template and a chat request give
// them. Input: "<template>\0<messages>" where messages are "role\x1fcontent" records
// separated by \x1e (no NUL: the template alone, rendered with a fixed conversation).
// Rendering is bounded by the interpreter's own limits (loop iterations, output size,
// recursion), which this target exercises: an infinite loop is a finding.
// Messages are cut at kMaxMessageBytes: a template may loop over their text (their repr,
// `messages|string`, is a string of that length), and each iteration of a string
// filter costs tens of microseconds under ASan, so long conversations made the fuzzer
// spend seconds per input without reaching more code. Templates are not cut.
#include <vector>

#include "tests/fuzz/fuzz_support.h"
#include "tokenizer/chat/chat_template.h"

namespace {

constexpr size_t kMaxMessageBytes = 512;

std::vector<ember::ChatMessage> messages_from(std::string_view bytes) {
  if (bytes.empty())
    return {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
  std::vector<ember::ChatMessage> out;
  size_t start = 0;
  while (start <= bytes.size() && out.size() < 64) {
    size_t end = bytes.find('\x1e', start);
    if (end == std::string_view::npos) end = bytes.size();
    const std::string_view record = bytes.substr(start, end - start);
    const size_t sep = record.find('\x1f');
    if (sep == std::string_view::npos) out.push_back({"user", std::string(record)});
    else out.push_back({std::string(record.substr(0, sep)), std::string(record.substr(sep + 1))});
    start = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::Silence();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [source, messages] = ember::fuzz::SplitAtNul(data, size);
  std::unique_ptr<ember::ChatTemplate> tmpl;
  if (!ember::ChatTemplate::Parse(source, &tmpl).ok()) return 0;
  ember::ChatTemplateVars vars{"<s>", "</s>", "<unk>", ""};
  std::string out;
  (void)tmpl->Render(messages_from(messages.substr(0, kMaxMessageBytes)), true, vars, &out);
  return 0;
}
