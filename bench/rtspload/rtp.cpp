#include "rtp.h"

namespace rtspload {

const char *
codec_name (Codec codec)
{
  switch (codec) {
    case Codec::h264:
      return "H264";
    case Codec::h265:
      return "H265";
    case Codec::jpeg:
      return "JPEG";
    case Codec::unknown:
      break;
  }
  return "unknown";
}

bool
parse_rtp (const uint8_t *data, size_t size, RtpPacket &packet)
{
  if (size < 12 || (data[0] >> 6) != 2)
    return false;
  const size_t csrc_count = data[0] & 0x0f;
  const bool extension = data[0] & 0x10;
  size_t header = 12 + 4 * csrc_count;
  if (extension) {
    if (size < header + 4)
      return false;
    header += 4 + 4 * ((size_t (data[header + 2]) << 8) | data[header + 3]);
  }
  if (size < header)
    return false;
  packet.marker = data[1] & 0x80;
  packet.payload_type = data[1] & 0x7f;
  packet.seq = uint16_t ((data[2] << 8) | data[3]);
  packet.timestamp = (uint32_t (data[4]) << 24) | (uint32_t (data[5]) << 16)
      | (uint32_t (data[6]) << 8) | data[7];
  packet.ssrc = (uint32_t (data[8]) << 24) | (uint32_t (data[9]) << 16)
      | (uint32_t (data[10]) << 8) | data[11];
  packet.payload = data + header;
  packet.payload_size = size - header;
  return true;
}

namespace {

bool
h264_is_idr (uint8_t nal_header)
{
  return (nal_header & 0x1f) == 5;
}

bool
h265_is_irap (uint8_t first_header_byte)
{
  const int type = (first_header_byte >> 1) & 0x3f;
  return type >= 16 && type <= 21;
}

// Walks the aggregated units of an H.264 STAP-A (skip 1 byte) or H.265 AP
// (skip 2): each is a 16-bit size followed by the unit.
template <typename IsKey>
bool
aggregate_has_key (const uint8_t *payload, size_t size, size_t header, IsKey is_key)
{
  size_t at = header;
  while (at + 2 < size) {
    const size_t unit = (size_t (payload[at]) << 8) | payload[at + 1];
    if (unit == 0)
      return false;
    if (is_key (payload[at + 2]))
      return true;
    at += 2 + unit;
  }
  return false;
}

}  // namespace

bool
payload_is_keyframe (Codec codec, const uint8_t *payload, size_t size)
{
  switch (codec) {
    case Codec::jpeg:
      return true;
    case Codec::h264: {
      if (size < 1)
        return false;
      const int type = payload[0] & 0x1f;
      if (type >= 1 && type <= 23)
        return h264_is_idr (payload[0]);
      if (type == 24)  // STAP-A
        return aggregate_has_key (payload, size, 1, h264_is_idr);
      if (type == 28)  // FU-A: start bit and the fragmented unit's type
        return size >= 2 && (payload[1] & 0x80) && h264_is_idr (payload[1]);
      return false;
    }
    case Codec::h265: {
      if (size < 2)
        return false;
      const int type = (payload[0] >> 1) & 0x3f;
      if (type == 48)  // aggregation packet
        return aggregate_has_key (payload, size, 2, h265_is_irap);
      if (type == 49) {  // fragmentation unit: S bit, 6-bit type
        if (size < 3 || !(payload[2] & 0x80))
          return false;
        const int fu_type = payload[2] & 0x3f;
        return fu_type >= 16 && fu_type <= 21;
      }
      return h265_is_irap (payload[0]);
    }
    case Codec::unknown:
      break;
  }
  return false;
}

}  // namespace rtspload
