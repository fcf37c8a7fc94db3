#include "tokenizer/spm_proto.h"

#include <cstring>

namespace ember::spm {
namespace {

// ---- writer -------------------------------------------------------------------
enum Wire : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
void PutKey(std::string* out, uint32_t field, Wire wire) { PutVarint(out, (uint64_t{field} << 3) | wire); }
// int32 and enum fields: negative values are sign-extended to 64 bits.
void PutInt(std::string* out, uint32_t field, int64_t v) {
  PutKey(out, field, kVarint);
  PutVarint(out, static_cast<uint64_t>(v));
}
void PutBool(std::string* out, uint32_t field, bool v) { PutInt(out, field, v ? 1 : 0); }
void PutBytes(std::string* out, uint32_t field, std::string_view b) {
  PutKey(out, field, kLen);
  PutVarint(out, b.size());
  out->append(b);
}
void PutFloat(std::string* out, uint32_t field, float f) {
  PutKey(out, field, kFixed32);
  uint32_t u;
  std::memcpy(&u, &f, 4);
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

// ---- reader -------------------------------------------------------------------
struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  explicit Reader(std::string_view b)
      : p(reinterpret_cast<const uint8_t*>(b.data())), end(p + b.size()) {}
  bool done() const { return p >= end; }
  bool Varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) return false;
      uint8_t b = *p++;
      r |= uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }
  bool Bytes(std::string_view* out) {
    uint64_t n;
    if (!Varint(&n) || n > static_cast<uint64_t>(end - p)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p), n);
    p += n;
    return true;
  }
  bool Fixed32(uint32_t* v) {
    if (end - p < 4) return false;
    *v = uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    p += 4;
    return true;
  }
  bool Skip(uint32_t wire) {
    uint64_t v;
    std::string_view s;
    switch (wire) {
      case kVarint: return Varint(&v);
      case kFixed64:
        if (end - p < 8) return false;
        p += 8;
        return true;
      case kLen: return Bytes(&s);
      case kFixed32:
        if (end - p < 4) return false;
        p += 4;
        return true;
      default: return false;  // groups (3, 4) are not used by this proto
    }
  }
};

// Visits every field of a message: fn(field, wire, reader) returns false on malformed
// input; fields it does not consume must be skipped by it (via r.Skip).
template <typename Fn>
bool ForEachField(std::string_view msg, Fn fn) {
  Reader r(msg);
  while (!r.done()) {
    uint64_t key;
    if (!r.Varint(&key)) return false;
    uint32_t field = static_cast<uint32_t>(key >> 3), wire = static_cast<uint32_t>(key & 7);
    if (field == 0) return false;
    if (!fn(field, wire, r)) return false;
  }
  return true;
}

bool ReadInt32(Reader& r, uint32_t wire, int32_t* out) {
  uint64_t v;
  if (wire != kVarint || !r.Varint(&v)) return false;
  *out = static_cast<int32_t>(static_cast<uint32_t>(v));  // low 32 bits, as protobuf does
  return true;
}
bool ReadBool(Reader& r, uint32_t wire, bool* out) {
  uint64_t v;
  if (wire != kVarint || !r.Varint(&v)) return false;
  *out = v != 0;
  return true;
}

bool DecodePiece(std::string_view msg, ProtoPiece* out) {
  return ForEachField(msg, [&](uint32_t field, uint32_t wire, Reader& r) {
    std::string_view s;
    uint32_t u;
    int32_t t;
    switch (field) {
      case 1:
        if (wire != kLen || !r.Bytes(&s)) return false;
        out->piece.assign(s);
        return true;
      case 2:
        if (wire != kFixed32 || !r.Fixed32(&u)) return false;
        std::memcpy(&out->score, &u, 4);
        return true;
      case 3:
        if (!ReadInt32(r, wire, &t)) return false;
        if (t >= 1 && t <= 6) out->type = t;  // unknown enum values are ignored (proto2)
        return true;
      default: return r.Skip(wire);
    }
  });
}

bool DecodeTrainer(std::string_view msg, ModelProtoInfo* out) {
  return ForEachField(msg, [&](uint32_t field, uint32_t wire, Reader& r) {
    switch (field) {
      case 3: return ReadInt32(r, wire, &out->model_type);
      case 4: return ReadInt32(r, wire, &out->vocab_size);
      case 24: return ReadBool(r, wire, &out->treat_whitespace_as_suffix);
      case 35: return ReadBool(r, wire, &out->byte_fallback);
      case 40: return ReadInt32(r, wire, &out->unk_id);
      case 41: return ReadInt32(r, wire, &out->bos_id);
      case 42: return ReadInt32(r, wire, &out->eos_id);
      case 43: return ReadInt32(r, wire, &out->pad_id);
      default: return r.Skip(wire);
    }
  });
}

bool DecodeNormalizer(std::string_view msg, ModelProtoInfo* out) {
  return ForEachField(msg, [&](uint32_t field, uint32_t wire, Reader& r) {
    std::string_view s;
    switch (field) {
      case 1:
        if (wire != kLen || !r.Bytes(&s)) return false;
        out->normalizer_name.assign(s);
        return true;
      case 2:
        if (wire != kLen || !r.Bytes(&s)) return false;
        out->charsmap_bytes = s.size();
        return true;
      case 3: return ReadBool(r, wire, &out->add_dummy_prefix);
      case 4: return ReadBool(r, wire, &out->remove_extra_whitespaces);
      case 5: return ReadBool(r, wire, &out->escape_whitespaces);
      default: return r.Skip(wire);
    }
  });
}

}  // namespace

std::string EncodeModelProto(const ModelProtoInfo& info) {
  std::string out, msg;
  out.reserve(info.pieces.size() * 24 + 256);
  for (const ProtoPiece& p : info.pieces) {
    msg.clear();
    PutBytes(&msg, 1, p.piece);
    PutFloat(&msg, 2, p.score);
    PutInt(&msg, 3, p.type);
    PutBytes(&out, 1, msg);
  }

  msg.clear();
  PutInt(&msg, 3, info.model_type);
  PutInt(&msg, 4, info.vocab_size);
  PutBool(&msg, 24, info.treat_whitespace_as_suffix);
  PutBool(&msg, 35, info.byte_fallback);
  PutInt(&msg, 40, info.unk_id);
  PutInt(&msg, 41, info.bos_id);
  PutInt(&msg, 42, info.eos_id);
  PutInt(&msg, 43, info.pad_id);
  PutBytes(&out, 2, msg);

  msg.clear();
  PutBytes(&msg, 1, info.normalizer_name);
  PutBool(&msg, 3, info.add_dummy_prefix);
  PutBool(&msg, 4, info.remove_extra_whitespaces);
  PutBool(&msg, 5, info.escape_whitespaces);
  PutBytes(&out, 3, msg);
  return out;
}

Status DecodeModelProto(std::string_view bytes, const std::string& name, ModelProtoInfo* out) {
  *out = ModelProtoInfo();
  const char* what = "ModelProto";
  bool ok = ForEachField(bytes, [&](uint32_t field, uint32_t wire, Reader& r) {
    std::string_view msg;
    if (field >= 1 && field <= 3) {
      if (wire != kLen || !r.Bytes(&msg)) return false;  // `what` still names the last good field
    }
    bool field_ok;
    switch (field) {
      case 1:
        what = "ModelProto.pieces";
        out->pieces.emplace_back();
        field_ok = DecodePiece(msg, &out->pieces.back());
        break;
      case 2: what = "ModelProto.trainer_spec"; field_ok = DecodeTrainer(msg, out); break;
      case 3: what = "ModelProto.normalizer_spec"; field_ok = DecodeNormalizer(msg, out); break;
      default: what = "ModelProto"; field_ok = r.Skip(wire); break;
    }
    if (field_ok) what = "ModelProto";
    return field_ok;
  });
  if (!ok) {
    std::string where = what;
    if (where == "ModelProto.pieces") {  // appended piece by piece: GCC 12's -Wrestrict misfires on "[" + string
      where += '[';
      where += std::to_string(out->pieces.size() - 1);
      where += ']';
    }
    return BadFormat(name + ": not a SentencePiece model (malformed protobuf in " + where + ")");
  }
  if (out->pieces.empty()) return BadFormat(name + ": SentencePiece model has no pieces");
  return Status::Ok();
}

}  // namespace ember::spm
