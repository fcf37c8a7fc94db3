// Internal to tokenizer/: a minimal protobuf wire-format codec for SentencePiece's
// ModelProto (sentencepiece_model.proto), so that a model can be built from a GGUF
// vocabulary and a .model file can be inspected without a protobuf dependency.
//
// Only the fields Ember reads or writes are modelled; the decoder skips the rest.
//   ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
//                    NormalizerSpec normalizer_spec = 3; }
//   SentencePiece  { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; }
//   TrainerSpec    { ModelType model_type = 3 [default UNIGRAM]; int32 vocab_size = 4;
//                    bool treat_whitespace_as_suffix = 24; bool byte_fallback = 35;
//                    int32 unk_id = 40 [0]; bos_id = 41 [1]; eos_id = 42 [2]; pad_id = 43 [-1]; }
//   NormalizerSpec { string name = 1; bytes precompiled_charsmap = 2;
//                    bool add_dummy_prefix = 3 [true]; bool remove_extra_whitespaces = 4 [true];
//                    bool escape_whitespaces = 5 [true]; }
// Wire format: key = varint(field << 3 | wire type); wire types 0 varint, 1 fixed64,
// 2 length-delimited (varint length + bytes), 5 fixed32 (little-endian). Negative int32
// values are sign-extended to 64 bits (10-byte varint). A message field seen twice is
// merged (later scalars win), which the decoder mirrors.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace ember::spm {

enum ModelType : int32_t { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

struct ProtoPiece {
  std::string piece;
  float score = 0.0f;
  int32_t type = 1;  // SentencePiece.Type: NORMAL 1 .. BYTE 6
};

struct ModelProtoInfo {
  std::vector<ProtoPiece> pieces;
  // TrainerSpec (proto defaults)
  int32_t model_type = kUnigram;
  int32_t vocab_size = 8000;
  bool treat_whitespace_as_suffix = false;
  bool byte_fallback = false;
  int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  // NormalizerSpec (proto defaults)
  std::string normalizer_name;
  size_t charsmap_bytes = 0;  // size of precompiled_charsmap (decode only)
  bool add_dummy_prefix = true;
  bool remove_extra_whitespaces = true;
  bool escape_whitespaces = true;
};

// Serializes `info` as a ModelProto (every listed field written explicitly).
std::string EncodeModelProto(const ModelProtoInfo& info);

// Parses a serialized ModelProto; BadFormat naming `name` on malformed input.
Status DecodeModelProto(std::string_view bytes, const std::string& name, ModelProtoInfo* out);

}  // namespace ember::spm
