// GPT-2's byte-to-unicode mapping, which byte-level BPE vocabularies (Llama 3, Qwen,
// GPT-2) are spelled in: every byte value gets a printable code point, so a token
// string never holds a raw space, control byte or a piece of a UTF-8 sequence.
//
//   bytes 0x21..0x7E, 0xA1..0xAC, 0xAE..0xFF  -> the code point of the same value
//   the other 68 bytes (0x00..0x20, 0x7F..0xA0, 0xAD), in increasing order
//                                             -> U+0100, U+0101, ... (so ' ' = 'Ġ' U+0120,
//                                                '\n' = 'Ċ' U+010A)
//
// Every mapped code point is below U+0144, so its UTF-8 form is 1 or 2 bytes.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace ember::bpe {

// The UTF-8 spelling of byte b's code point (1 or 2 bytes).
std::string_view ByteToUnicode(uint8_t b);

// Appends the byte-encoded form of raw bytes: the spelling a vocabulary's tokens use.
void AppendByteEncoded(std::string_view raw, std::string* out);

// Decodes a vocabulary string back to raw bytes, appended to *out. False (and *out
// unspecified past its old size) when `encoded` holds a code point that is not one
// of the 256 (such tokens are rendered verbatim by the caller).
bool AppendByteDecoded(std::string_view encoded, std::string* out);

}  // namespace ember::bpe
