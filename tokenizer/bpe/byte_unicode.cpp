#include "tokenizer/bpe/byte_unicode.h"

#include <array>

namespace ember::bpe {
namespace {

bool MapsToItself(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct Tables {
  std::array<uint16_t, 256> byte_to_cp{};
  std::array<int16_t, 0x144> cp_to_byte{};  // -1: not a mapped code point
  std::array<std::array<char, 2>, 256> utf8{};
  std::array<uint8_t, 256> utf8_len{};

  Tables() {
    cp_to_byte.fill(-1);
    int next = 0x100;
    for (int b = 0; b < 256; ++b) {
      int cp = MapsToItself(b) ? b : next++;
      byte_to_cp[b] = static_cast<uint16_t>(cp);
      cp_to_byte[cp] = static_cast<int16_t>(b);
      if (cp < 0x80) {
        utf8[b] = {static_cast<char>(cp), 0};
        utf8_len[b] = 1;
      } else {
        utf8[b] = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
        utf8_len[b] = 2;
      }
    }
  }
};

const Tables& T() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view ByteToUnicode(uint8_t b) { return {T().utf8[b].data(), T().utf8_len[b]}; }

void AppendByteEncoded(std::string_view raw, std::string* out) {
  const Tables& t = T();
  for (char c : raw) {
    uint8_t b = static_cast<uint8_t>(c);
    out->append(t.utf8[b].data(), t.utf8_len[b]);
  }
}

bool AppendByteDecoded(std::string_view s, std::string* out) {
  const Tables& t = T();
  for (size_t i = 0; i < s.size();) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    int cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && (static_cast<uint8_t>(s[i + 1]) & 0xC0) == 0x80) {
      cp = ((c & 0x1F) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;
    }
    if (cp >= static_cast<int>(t.cp_to_byte.size()) || t.cp_to_byte[cp] < 0) return false;
    out->push_back(static_cast<char>(t.cp_to_byte[cp]));
  }
  return true;
}

}  // namespace ember::bpe
