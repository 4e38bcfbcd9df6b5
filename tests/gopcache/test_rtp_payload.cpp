// Unit tests of what instant start reads and writes besides the cache: the
// keyframes in an H.264 or H.265 RTP payload (plugins/common/gop_cache.h) and
// the RTP-Info rewrite (launcher/instant_start.h).  No pipeline, no network.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/gop_cache.h"
#include "common/gstref.h"
#include "instant_start.h"
#include "rtp_packets.h"

namespace {

using camrelay::BufferPtr;
using camrelay::holds_keyframe_picture;
using camrelay::RtpVideoCodec;
using gopcachetest::packet_with_payload;

bool
keyframe_in (RtpVideoCodec codec, const std::vector<guint8> &payload, guint8 csrcs = 0,
    guint16 extension_words = 0, guint8 padding = 0)
{
  BufferPtr packet = packet_with_payload (1, 0, true, true, payload, csrcs, extension_words, padding);
  return holds_keyframe_picture (packet.get (), codec);
}

TEST (KeyframeInPayload, CodecFromCaps)
{
  auto codec_of = [] (const char *caps_string) {
    camrelay::CapsPtr caps{gst_caps_from_string (caps_string)};
    return camrelay::rtp_video_codec (caps.get ());
  };
  EXPECT_EQ (codec_of ("application/x-rtp, media=video, encoding-name=H264"), RtpVideoCodec::h264);
  EXPECT_EQ (codec_of ("application/x-rtp, media=video, encoding-name=H265"), RtpVideoCodec::h265);
  EXPECT_EQ (codec_of ("application/x-rtp, media=video, encoding-name=h265"), RtpVideoCodec::h265);
  EXPECT_EQ (codec_of ("application/x-rtp, media=video, encoding-name=JPEG"), RtpVideoCodec::other);
  EXPECT_EQ (codec_of ("application/x-rtp, media=video"), RtpVideoCodec::other);
  EXPECT_EQ (camrelay::rtp_video_codec (nullptr), RtpVideoCodec::other);
}

TEST (KeyframeInPayload, H264)
{
  const RtpVideoCodec h264 = RtpVideoCodec::h264;
  EXPECT_TRUE (keyframe_in (h264, {0x65, 0x88, 0x84}));   // IDR slice
  EXPECT_FALSE (keyframe_in (h264, {0x41, 0x9a, 0x02}));  // non-IDR slice
  EXPECT_FALSE (keyframe_in (h264, {0x67, 0x42, 0x00}));  // SPS alone
  // STAP-A: SPS, PPS, IDR; and SPS, PPS only.
  EXPECT_TRUE (keyframe_in (h264, {0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce,
      0x00, 0x02, 0x65, 0x88}));
  EXPECT_FALSE (keyframe_in (h264, {0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}));
  // A unit size past the end is not read.
  EXPECT_FALSE (keyframe_in (h264, {0x78, 0x00, 0x40, 0x67, 0x42, 0x65}));
  // FU-A: the fragment header's type, first fragment or not.
  EXPECT_TRUE (keyframe_in (h264, {0x7c, 0x85, 0x88}));
  EXPECT_TRUE (keyframe_in (h264, {0x7c, 0x45, 0x88}));
  EXPECT_FALSE (keyframe_in (h264, {0x5c, 0x81, 0x9a}));
  // The payload is found past CSRCs, an extension and before padding.
  EXPECT_TRUE (keyframe_in (h264, {0x65, 0x88}, 2, 3, 4));
  EXPECT_FALSE (keyframe_in (h264, {0x41, 0x9a}, 2, 3, 4));
  EXPECT_FALSE (keyframe_in (RtpVideoCodec::other, {0x65, 0x88}));
}

TEST (KeyframeInPayload, H265)
{
  const RtpVideoCodec h265 = RtpVideoCodec::h265;
  EXPECT_TRUE (keyframe_in (h265, {0x26, 0x01, 0xaf}));   // IDR_W_RADL (19)
  EXPECT_TRUE (keyframe_in (h265, {0x28, 0x01, 0xaf}));   // IDR_N_LP (20)
  EXPECT_TRUE (keyframe_in (h265, {0x2a, 0x01, 0xaf}));   // CRA (21)
  EXPECT_FALSE (keyframe_in (h265, {0x02, 0x01, 0xd0}));  // TRAIL_R (1)
  EXPECT_FALSE (keyframe_in (h265, {0x40, 0x01, 0x0c}));  // VPS alone
  // AP: VPS, SPS, PPS, IDR; and the parameter sets only.
  EXPECT_TRUE (keyframe_in (h265, {0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0c, 0x00, 0x03, 0x42,
      0x01, 0x01, 0x00, 0x03, 0x44, 0x01, 0xc0, 0x00, 0x03, 0x26, 0x01, 0xaf}));
  EXPECT_FALSE (keyframe_in (h265, {0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0c, 0x00, 0x03, 0x42,
      0x01, 0x01}));
  // FU: the fragment header's type (S bit set, then neither S nor E).
  EXPECT_TRUE (keyframe_in (h265, {0x62, 0x01, 0x93, 0xaf}));
  EXPECT_TRUE (keyframe_in (h265, {0x62, 0x01, 0x15, 0xaf}));
  EXPECT_FALSE (keyframe_in (h265, {0x62, 0x01, 0x81, 0xd0}));
  EXPECT_TRUE (keyframe_in (h265, {0x26, 0x01}, 1, 1, 2));
}

// ---- RTP-Info --------------------------------------------------------------------

using camrelay::launcher::rewrite_rtp_info;

TEST (RewriteRtpInfo, ReplacesTheVideoEntryOfTwo)
{
  const std::string in = "url=rtsp://127.0.0.1:8554/cam/stream=0;seq=100;rtptime=200, "
                         "url=rtsp://127.0.0.1:8554/cam/stream=1;seq=5;rtptime=6";
  EXPECT_EQ (rewrite_rtp_info (in, "stream=0", 65535, 4294967295u),
      "url=rtsp://127.0.0.1:8554/cam/stream=0;seq=65535;rtptime=4294967295, "
      "url=rtsp://127.0.0.1:8554/cam/stream=1;seq=5;rtptime=6");
  EXPECT_EQ (rewrite_rtp_info (in, "stream=1", 1, 2),
      "url=rtsp://127.0.0.1:8554/cam/stream=0;seq=100;rtptime=200, "
      "url=rtsp://127.0.0.1:8554/cam/stream=1;seq=1;rtptime=2");
}

TEST (RewriteRtpInfo, KeepsTheEntriesOrder)
{
  const std::string in = "url=rtsp://h/cam/stream=1;seq=5;rtptime=6,"
                         "url=rtsp://h/cam/stream=0;seq=100;rtptime=200";
  EXPECT_EQ (rewrite_rtp_info (in, "stream=0", 7, 8),
      "url=rtsp://h/cam/stream=1;seq=5;rtptime=6, url=rtsp://h/cam/stream=0;seq=7;rtptime=8");
}

TEST (RewriteRtpInfo, SpacesAroundEntries)
{
  const std::string in = "  url=rtsp://h/cam/stream=0;seq=1;rtptime=2,   url=rtsp://h/cam/stream=1;seq=3";
  EXPECT_EQ (rewrite_rtp_info (in, "stream=1", 9, 10),
      "url=rtsp://h/cam/stream=0;seq=1;rtptime=2, url=rtsp://h/cam/stream=1;seq=9;rtptime=10");
  EXPECT_EQ (rewrite_rtp_info ("url=rtsp://h/cam/stream=0;seq=1;rtptime=2", "stream=0", 3, 4),
      "url=rtsp://h/cam/stream=0;seq=3;rtptime=4");
}

TEST (RewriteRtpInfo, NoMatchingEntryGivesNothing)
{
  const std::string in = "url=rtsp://h/cam/stream=10;seq=1;rtptime=2, url=rtsp://h/cam/stream=1;seq=3;rtptime=4";
  EXPECT_EQ (rewrite_rtp_info (in, "stream=0", 1, 2), "") << "stream=10 is not stream=0";
  EXPECT_EQ (rewrite_rtp_info ("", "stream=0", 1, 2), "");
  EXPECT_EQ (rewrite_rtp_info ("seq=1;rtptime=2", "stream=0", 1, 2), "");
  EXPECT_EQ (rewrite_rtp_info ("url=stream=0;seq=1", "stream=0", 1, 2), "")
      << "the control is the last path segment of the url";
}

}  // namespace
