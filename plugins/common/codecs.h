// What the project knows about each codec it carries, in one table: the caps
// camerasrc delivers, the elements that depayload, parse, payload and encode
// them.  Used by camerasrc, the launcher and the tests (header-only).
#pragma once

#include <cstring>
#include <string>

namespace camrelay {

enum class MediaKind { Video, Audio };

struct CodecRow {
  const char *caps_name;       // the structure name camerasrc delivers
  const char *short_name;      // in stats ("codec") and logs
  MediaKind kind;
  const char *output_caps;     // what camerasrc delivers: parsed, AU-aligned
  const char *parser;          // after a depayloader or demuxer (nullptr: none needed)
  const char *payloader;       // RTP payloader (the launcher's media)
  const char *payload_parser;  // between the launcher's appsrc and payloader, or nullptr
  const char *encoder;         // encodes raw video up to the parser (the slate), or nullptr
};

// One RTP encoding a camera may announce, and what depayloads it.
struct RtpEncodingRow {
  const char *encoding_name;  // SDP / application/x-rtp encoding-name
  const char *caps_name;      // the codec it carries (CodecRow::caps_name)
  const char *depayloader;
};

inline constexpr CodecRow CODECS[] = {
  {"video/x-h264", "h264", MediaKind::Video,
      "video/x-h264,stream-format=(string)byte-stream,alignment=(string)au", "h264parse",
      "rtph264pay", nullptr,
      "x264enc speed-preset=ultrafast tune=zerolatency key-int-max=1 ! "
      "h264parse config-interval=-1"},
  {"video/x-h265", "h265", MediaKind::Video,
      "video/x-h265,stream-format=(string)byte-stream,alignment=(string)au", "h265parse",
      "rtph265pay", nullptr,
      "x265enc speed-preset=ultrafast tune=zerolatency key-int-max=1 ! "
      "h265parse config-interval=-1"},
  {"image/jpeg", "jpeg", MediaKind::Video, "image/jpeg,parsed=(boolean)true", "jpegparse",
      "rtpjpegpay", nullptr, "jpegenc ! jpegparse"},
  // RFC 3640 wants raw AAC with its codec data: aacparse before the payloader.
  {"audio/mpeg", "aac", MediaKind::Audio, "audio/mpeg,mpegversion=(int)4,framed=(boolean)true",
      "aacparse", "rtpmp4gpay", "aacparse", nullptr},
  {"audio/x-alaw", "pcma", MediaKind::Audio, "audio/x-alaw", nullptr, "rtppcmapay", nullptr,
      nullptr},
  {"audio/x-mulaw", "pcmu", MediaKind::Audio, "audio/x-mulaw", nullptr, "rtppcmupay", nullptr,
      nullptr},
  {"audio/x-opus", "opus", MediaKind::Audio, "audio/x-opus", "opusparse", "rtpopuspay", nullptr,
      nullptr},
};

inline constexpr RtpEncodingRow RTP_ENCODINGS[] = {
  {"H264", "video/x-h264", "rtph264depay"},
  {"H265", "video/x-h265", "rtph265depay"},
  {"JPEG", "image/jpeg", "rtpjpegdepay"},
  {"MPEG4-GENERIC", "audio/mpeg", "rtpmp4gdepay"},
  {"MP4A-LATM", "audio/mpeg", "rtpmp4adepay"},
  {"PCMA", "audio/x-alaw", "rtppcmadepay"},
  {"PCMU", "audio/x-mulaw", "rtppcmudepay"},
  {"OPUS", "audio/x-opus", "rtpopusdepay"},
};

// The row of caps name `caps_name`, or nullptr.
inline const CodecRow *
codec_by_caps_name (const char *caps_name)
{
  for (const CodecRow &row : CODECS)
    if (caps_name && std::strcmp (row.caps_name, caps_name) == 0)
      return &row;
  return nullptr;
}

// The row of short name `short_name` ("h264"), or nullptr.
inline const CodecRow *
codec_by_short_name (const std::string &short_name)
{
  for (const CodecRow &row : CODECS)
    if (short_name == row.short_name)
      return &row;
  return nullptr;
}

// The RTP encoding `encoding_name` (as in the SDP, upper case), or nullptr.
inline const RtpEncodingRow *
rtp_encoding (const char *encoding_name)
{
  for (const RtpEncodingRow &row : RTP_ENCODINGS)
    if (encoding_name && std::strcmp (row.encoding_name, encoding_name) == 0)
      return &row;
  return nullptr;
}

// The caps camerasrc delivers for `kind`, all codecs: "a; b; c".
inline std::string
codec_caps (MediaKind kind)
{
  std::string caps;
  for (const CodecRow &row : CODECS) {
    if (row.kind != kind)
      continue;
    if (!caps.empty ())
      caps += "; ";
    caps += row.output_caps;
  }
  return caps;
}

}  // namespace camrelay
