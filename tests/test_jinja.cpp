// Unit tests of the Jinja interpreter (tokenizer/chat/).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tokenizer/chat/chat_template.h"

namespace ember {
namespace {

TEST(Jinja, Placeholder) {
  std::unique_ptr<ChatTemplate> t;
  ASSERT_TRUE(ChatTemplate::Parse("{{ 1 + 2 }}", &t).ok());
  std::string out;
  ASSERT_TRUE(t->Render({}, false, {}, &out).ok());
  EXPECT_EQ(out, "3");
}

}  // namespace
}  // namespace ember
