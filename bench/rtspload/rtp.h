// RTP parsing for rtspload: the fixed header, and whether a payload belongs to
// a keyframe.  Nothing here allocates; it runs once per received packet.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rtspload {

enum class Codec { unknown, h264, h265, jpeg };

const char *codec_name (Codec codec);

struct RtpPacket {
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  uint8_t payload_type = 0;
  bool marker = false;
  const uint8_t *payload = nullptr;
  size_t payload_size = 0;  // of what is in memory, which may be a prefix of the packet
};

// Parses the fixed header, CSRCs and header extension of `data`.  `size` may be
// a prefix of the packet (its first bytes); the payload is then truncated too.
// False when it is not RTP version 2 or too short for its header.
bool parse_rtp (const uint8_t *data, size_t size, RtpPacket &packet);

// True when `payload` carries (the start of, or a fragment of) a keyframe:
// H.264 IDR (NAL type 5) alone, in STAP-A or in the first fragment of FU-A;
// H.265 IRAP (types 16 to 21) alone, in AP or in the first fragment of FU;
// JPEG always.  Only the bytes present are looked at.
bool payload_is_keyframe (Codec codec, const uint8_t *payload, size_t size);

}  // namespace rtspload
