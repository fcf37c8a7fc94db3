// cpp-httplib is Debian's compiled library, and the macros it was built with decide the
// layout of its classes: httplib.h must be included with the same ones (CMakeLists.txt,
// target ember_httplib). Without CPPHTTPLIB_OPENSSL_SUPPORT, httplib::Client is 8 bytes
// here and 16 in the library, whose constructor then writes its is_ssl_ flag past every
// Client the server, the router and the tests put on their stacks (ThreadSanitizer found
// the smashed stack: a thread of test_serve jumping to a heap address).
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstddef>
#include <cstring>
#include <new>

namespace ember::testing {
namespace {

TEST(HttplibAbi, AClientBuiltByTheLibraryStaysInsideItsObject) {
  constexpr unsigned char kCanary = 0xA5;
  alignas(std::max_align_t) unsigned char buf[sizeof(httplib::Client) + 64];
  std::memset(buf, kCanary, sizeof buf);
  auto* client = new (buf) httplib::Client("127.0.0.1", 1);  // constructed in the library
  size_t changed = 0;
  for (size_t i = sizeof(httplib::Client); i < sizeof buf; ++i) changed += buf[i] != kCanary;
  client->httplib::Client::~Client();
  EXPECT_EQ(changed, 0u) << "the library wrote past a " << sizeof(httplib::Client)
                         << "-byte httplib::Client: httplib.h was included without the macros it was built with";
}

}  // namespace
}  // namespace ember::testing
