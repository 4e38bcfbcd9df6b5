// Unit tests of the RTP GOP cache (plugins/common/gop_cache.*): no pipeline,
// no network.
#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/gop_cache.h"
#include "common/gstref.h"
#include "rtp_packets.h"

namespace {

using camrelay::BufferPtr;
using camrelay::EventPtr;
using camrelay::GopBurst;
using camrelay::GopCache;
using camrelay::RtpHeader;

constexpr uint64_t kBig = 1u << 30;

using gopcachetest::make_packet;

// Read with GstRTPBuffer, and checked against the cache's own reader.
RtpHeader
header_of (GstBuffer *packet)
{
  const gopcachetest::RtpFields fields = gopcachetest::rtp_fields (packet);
  RtpHeader header;
  EXPECT_TRUE (camrelay::read_rtp_header (packet, header));
  EXPECT_EQ (header.seq, fields.seq);
  EXPECT_EQ (header.timestamp, fields.timestamp);
  EXPECT_EQ (header.marker, fields.marker);
  return header;
}

// Feeds a cache frame by frame: each frame is `packets` packets with one
// timestamp, the last one marked; sequence numbers and timestamps go on.
struct Feeder {
  GopCache &cache;
  uint16_t seq;
  uint32_t timestamp;
  uint32_t tick = 3000;  // 30 fps at 90 kHz
  guint payload = 100;

  void frame (bool keyframe, unsigned packets = 2) { frame_at (timestamp, keyframe, packets); timestamp += tick; }
  void frame_at (uint32_t ts, bool keyframe, unsigned packets = 2)
  {
    for (unsigned i = 0; i < packets; i++) {
      BufferPtr p = make_packet (seq++, ts, i + 1 == packets, keyframe, payload);
      cache.push (p.get ());
    }
  }
  uint64_t packet_bytes () const { return 12 + payload; }
};

std::vector<RtpHeader>
headers_of (const GopBurst &burst)
{
  std::vector<RtpHeader> out;
  for (const BufferPtr &p : burst.packets)
    out.push_back (header_of (p.get ()));
  return out;
}

TEST (GopCache, EmptyUntilTheFirstKeyframe)
{
  GopCache cache (kBig);
  Feeder feed{cache, 100, 90000};
  std::string why;
  EXPECT_TRUE (cache.take (kBig, why).empty ());
  EXPECT_EQ (why, "no keyframe yet");
  for (int i = 0; i < 5; i++)
    feed.frame (false);
  EXPECT_EQ (cache.bytes (), 0u) << "delta frames before any keyframe are not cached";
  why.clear ();
  EXPECT_TRUE (cache.take (kBig, why).empty ());
  EXPECT_EQ (why, "no keyframe yet");

  const uint16_t key_seq = feed.seq;
  feed.frame (true);
  feed.frame (false);
  EXPECT_EQ (cache.bytes (), 4 * feed.packet_bytes ());
  GopBurst burst = cache.take (kBig, why);
  ASSERT_FALSE (burst.empty ());
  EXPECT_EQ (burst.packets.size (), 4u);
  EXPECT_EQ (burst.frames, 2u);
  EXPECT_EQ (burst.first_seq, key_seq);
  EXPECT_EQ (burst.last_seq, static_cast<uint16_t> (key_seq + 3));
  EXPECT_EQ (burst.bytes, 4 * feed.packet_bytes ());
  EXPECT_FALSE (GST_BUFFER_FLAG_IS_SET (burst.packets.front ().get (), GST_BUFFER_FLAG_DELTA_UNIT));
}

TEST (GopCache, ANewKeyframeStartsANewGop)
{
  GopCache cache (kBig);
  Feeder feed{cache, 7, 1000};
  feed.frame (true);
  feed.frame (false);
  feed.frame (false);
  const uint16_t key_seq = feed.seq;
  feed.frame (true, 3);
  feed.frame (false, 1);
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_FALSE (burst.empty ()) << why;
  EXPECT_EQ (burst.first_seq, key_seq);
  EXPECT_EQ (burst.packets.size (), 4u);
  EXPECT_EQ (burst.frames, 2u);
  EXPECT_EQ (cache.bytes (), 4 * feed.packet_bytes ());
}

// Only a packet that starts a frame starts a GOP: a keyframe's later packets
// (not flagged DELTA_UNIT either) belong to the same GOP.
TEST (GopCache, AKeyframesLaterPacketsDoNotRestartTheGop)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 0};
  const uint16_t key_seq = feed.seq;
  feed.frame (true, 5);
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_EQ (burst.packets.size (), 5u) << why;
  EXPECT_EQ (burst.first_seq, key_seq);
  EXPECT_EQ (burst.frames, 1u);
}

TEST (GopCache, TakeSqueezesOlderFramesJustBelowTheNewest)
{
  GopCache cache (kBig);
  Feeder feed{cache, 500, 1000000};
  feed.frame (true, 3);
  feed.frame (false, 2);
  feed.frame (false, 1);
  const uint32_t newest = feed.timestamp;
  feed.frame (false, 2);
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_FALSE (burst.empty ()) << why;
  EXPECT_EQ (burst.frames, 4u);
  EXPECT_EQ (burst.first_timestamp, newest - 3);
  const std::vector<uint32_t> expected{newest - 3, newest - 3, newest - 3, newest - 2, newest - 2,
      newest - 1, newest, newest};
  std::vector<RtpHeader> headers = headers_of (burst);
  ASSERT_EQ (headers.size (), expected.size ());
  for (size_t i = 0; i < headers.size (); i++) {
    EXPECT_EQ (headers[i].timestamp, expected[i]) << "packet " << i;
    EXPECT_EQ (headers[i].seq, static_cast<uint16_t> (500 + i)) << "packet " << i;
  }
  // Markers and flags are the originals'.
  EXPECT_TRUE (headers[2].marker);
  EXPECT_FALSE (headers[0].marker);
  EXPECT_TRUE (GST_BUFFER_FLAG_IS_SET (burst.packets[3].get (), GST_BUFFER_FLAG_DELTA_UNIT));
}

TEST (GopCache, AKeyframeAloneKeepsItsTimestamp)
{
  GopCache cache (kBig);
  Feeder feed{cache, 1, 4242};
  feed.frame (true, 2);
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_EQ (burst.packets.size (), 2u) << why;
  EXPECT_EQ (burst.first_timestamp, 4242u);
  for (const RtpHeader &h : headers_of (burst))
    EXPECT_EQ (h.timestamp, 4242u);
}

TEST (GopCache, TimestampsWrapAround)
{
  GopCache cache (kBig);
  Feeder feed{cache, 10, 0xFFFFFFFFu - 4000};  // the third frame wraps
  feed.frame (true);
  feed.frame (false);
  feed.frame (false);
  EXPECT_FALSE (cache.reordered ()) << "a timestamp that wraps is not going back in time";
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_FALSE (burst.empty ()) << why;
  const uint32_t newest = static_cast<uint32_t> (0xFFFFFFFFu - 4000 + 2 * 3000);
  EXPECT_EQ (burst.frames, 3u);
  EXPECT_EQ (burst.first_timestamp, newest - 2);
  std::vector<RtpHeader> headers = headers_of (burst);
  EXPECT_EQ (headers.front ().timestamp, newest - 2);
  EXPECT_EQ (headers.back ().timestamp, newest);
}

TEST (GopCache, SqueezedTimestampsWrapAround)
{
  GopCache cache (kBig);
  Feeder feed{cache, 10, 0};
  feed.tick = 1;  // the newest frame at 2: the squeezed ones go below 0
  feed.frame_at (0xFFFFFFFFu, true);
  feed.frame_at (0, false);
  feed.frame_at (1, false);
  feed.frame_at (2, false);
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_EQ (burst.frames, 4u) << why;
  EXPECT_EQ (burst.first_timestamp, 0xFFFFFFFFu);
  std::vector<RtpHeader> headers = headers_of (burst);
  EXPECT_EQ (headers[0].timestamp, 0xFFFFFFFFu);
  EXPECT_EQ (headers[2].timestamp, 0u);
  EXPECT_EQ (headers[7].timestamp, 2u);
}

TEST (GopCache, SequenceNumbersWrapAround)
{
  GopCache cache (kBig);
  Feeder feed{cache, 65533, 0};
  feed.frame (true, 2);   // 65533, 65534
  feed.frame (false, 3);  // 65535, 0, 1
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_EQ (burst.packets.size (), 5u) << why;
  EXPECT_EQ (burst.first_seq, 65533);
  EXPECT_EQ (burst.last_seq, 1);
  EXPECT_TRUE (camrelay::seq_after (0, 65535));
  EXPECT_FALSE (camrelay::seq_after (65535, 0));

  std::vector<BufferPtr> since;
  feed.frame (false, 2);  // 2, 3
  ASSERT_TRUE (cache.since (65535, 3, since));
  ASSERT_EQ (since.size (), 3u);
  EXPECT_EQ (header_of (since[0].get ()).seq, 0);
  EXPECT_EQ (header_of (since[2].get ()).seq, 2);
}

TEST (GopCache, AGopOverTheCacheLimitIsDroppedUntilTheNextKeyframe)
{
  GopCache cache (0);
  Feeder feed{cache, 0, 0};
  cache.set_max_bytes (5 * feed.packet_bytes ());
  feed.frame (true, 2);
  feed.frame (false, 2);
  feed.frame (false, 1);  // exactly at the limit: kept
  EXPECT_EQ (cache.bytes (), 5 * feed.packet_bytes ());
  std::string why;
  EXPECT_FALSE (cache.take (kBig, why).empty ()) << why;

  feed.frame (false, 1);  // over
  EXPECT_EQ (cache.bytes (), 0u);
  GopBurst burst = cache.take (kBig, why);
  EXPECT_TRUE (burst.empty ());
  EXPECT_EQ (why, "the GOP is larger than the cache's limit");
  feed.frame (false, 1);
  EXPECT_EQ (cache.bytes (), 0u) << "the rest of the GOP is not cached";
  EXPECT_TRUE (cache.take (kBig, why).empty ());

  const uint16_t key_seq = feed.seq;
  feed.frame (true, 2);
  EXPECT_EQ (cache.bytes (), 2 * feed.packet_bytes ());
  burst = cache.take (kBig, why);
  ASSERT_FALSE (burst.empty ()) << why;
  EXPECT_EQ (burst.first_seq, key_seq);
}

TEST (GopCache, TheBurstLimitRefusesWithoutDropping)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 0};
  feed.frame (true, 2);
  feed.frame (false, 2);
  std::string why;
  EXPECT_TRUE (cache.take (4 * feed.packet_bytes () - 1, why).empty ());
  EXPECT_EQ (why, "the GOP is larger than the burst limit");
  EXPECT_EQ (cache.bytes (), 4 * feed.packet_bytes ());
  GopBurst burst = cache.take (4 * feed.packet_bytes (), why);
  EXPECT_EQ (burst.packets.size (), 4u) << why;
}

// B-frames: a frame whose timestamp goes back.  The GOP where it was seen and
// the next three whole GOPs are refused; the one after is served.
TEST (GopCache, ReorderingRefusesBurstsForThreeMoreGops)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 90000};
  feed.frame (true);
  feed.frame (false);
  std::string why;
  EXPECT_FALSE (cache.take (kBig, why).empty ());
  EXPECT_FALSE (cache.reordered ());

  // Decode order I P B: the B frame is shown before the P frame.
  feed.frame_at (feed.timestamp + 3000, false);
  feed.frame_at (feed.timestamp, false);
  feed.timestamp += 6000;
  EXPECT_TRUE (cache.reordered ());
  EXPECT_TRUE (cache.take (kBig, why).empty ());
  EXPECT_EQ (why, "the stream reorders frames (B-frames)");

  for (int gop = 0; gop < 3; gop++) {
    feed.frame (true);
    feed.frame (false);
    EXPECT_TRUE (cache.reordered ()) << "clean GOP " << gop;
    EXPECT_TRUE (cache.take (kBig, why).empty ()) << "clean GOP " << gop;
  }
  feed.frame (true);
  feed.frame (false);
  EXPECT_FALSE (cache.reordered ());
  GopBurst burst = cache.take (kBig, why);
  EXPECT_EQ (burst.frames, 2u) << why;
}

TEST (GopCache, ReorderingAgainRestartsTheCooldown)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 90000};
  feed.frame (true);
  feed.frame_at (feed.timestamp + 3000, false);
  feed.frame_at (feed.timestamp, false);  // back
  feed.timestamp += 6000;
  feed.frame (true);
  feed.frame (true);
  feed.frame (true);  // two clean GOPs counted, one left
  feed.frame_at (feed.timestamp + 3000, false);
  feed.frame_at (feed.timestamp, false);  // back again
  feed.timestamp += 6000;
  for (int gop = 0; gop < 3; gop++) {
    feed.frame (true);
    EXPECT_TRUE (cache.reordered ()) << "GOP " << gop;
  }
  feed.frame (true);
  EXPECT_FALSE (cache.reordered ());
}

TEST (GopCache, SinceReturnsTheRecentPacketsBetween)
{
  GopCache cache (kBig);
  Feeder feed{cache, 1000, 0};
  feed.frame (true, 4);   // 1000..1003
  feed.frame (false, 4);  // 1004..1007
  std::vector<BufferPtr> out;
  ASSERT_TRUE (cache.since (1002, 1006, out));
  ASSERT_EQ (out.size (), 3u);
  EXPECT_EQ (header_of (out[0].get ()).seq, 1003);
  EXPECT_EQ (header_of (out[2].get ()).seq, 1005);

  out.clear ();
  EXPECT_TRUE (cache.since (1005, 1006, out)) << "nothing between two neighbours";
  EXPECT_TRUE (out.empty ());
  EXPECT_TRUE (cache.since (1007, 1008, out)) << "the newest and the next one";
  EXPECT_TRUE (out.empty ());
  EXPECT_FALSE (cache.since (1007, 1010, out)) << "packets 1008 and 1009 never came";
  EXPECT_TRUE (out.empty ());
  // Up to the newest when `before` has not come yet.
  EXPECT_TRUE (cache.since (1005, 1020, out));
  EXPECT_EQ (out.size (), 2u);
}

TEST (GopCache, SinceFailsWhenPacketsAreGone)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 0};
  feed.payload = 1;
  // More packets than the cache keeps apart from its GOP (a few hundred).
  for (int i = 0; i < 200; i++)
    feed.frame (i % 50 == 0, 5);
  std::vector<BufferPtr> out;
  EXPECT_FALSE (cache.since (0, 999, out));
  EXPECT_TRUE (out.empty ());
  EXPECT_TRUE (cache.since (990, 999, out));
  EXPECT_EQ (out.size (), 8u);
}

TEST (GopCache, ClearForgetsEverything)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 0};
  feed.frame (true);
  feed.frame (false);
  cache.clear ();
  EXPECT_EQ (cache.bytes (), 0u);
  std::string why;
  EXPECT_TRUE (cache.take (kBig, why).empty ());
  EXPECT_EQ (why, "no keyframe yet");
  std::vector<BufferPtr> out;
  EXPECT_FALSE (cache.since (1, 3, out)) << "packet 2 was forgotten";
  // After a flush the timeline may restart lower: that is not reordering.
  feed.timestamp = 0;
  feed.frame (false);
  EXPECT_EQ (cache.bytes (), 0u) << "a delta frame after a clear is not cached";
  feed.frame (true);
  EXPECT_FALSE (cache.reordered ());
  EXPECT_FALSE (cache.take (kBig, why).empty ()) << why;
}

TEST (GopCache, CachedPacketsAreSharedNotCopied)
{
  GopCache cache (kBig);
  BufferPtr key = make_packet (1, 100, true, true);
  cache.push (key.get ());
  BufferPtr delta = make_packet (2, 200, true, false);
  cache.push (delta.get ());
  std::string why;
  GopBurst burst = cache.take (kBig, why);
  ASSERT_EQ (burst.packets.size (), 2u);
  EXPECT_EQ (burst.packets[1].get (), delta.get ()) << "the newest frame is sent as it is";
  EXPECT_NE (burst.packets[0].get (), key.get ()) << "an older frame is a re-stamped copy";
  EXPECT_EQ (header_of (key.get ()).timestamp, 100u) << "the original keeps its timestamp";
  EXPECT_EQ (header_of (burst.packets[0].get ()).timestamp, 199u);
}

TEST (GopCache, RestampLeavesTheOriginalAndItsPayloadUntouched)
{
  // Header and payload in two memories, as payloaders make them.
  BufferPtr packet{gst_rtp_buffer_new_allocate (0, 0, 0)};
  {
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    ASSERT_TRUE (gst_rtp_buffer_map (packet.get (), GST_MAP_WRITE, &rtp));
    gst_rtp_buffer_set_seq (&rtp, 77);
    gst_rtp_buffer_set_timestamp (&rtp, 0x01020304);
    gst_rtp_buffer_set_marker (&rtp, TRUE);
    gst_rtp_buffer_unmap (&rtp);
  }
  GstBuffer *payload = gst_buffer_new_allocate (nullptr, 64, nullptr);
  gst_buffer_memset (payload, 0, 0xAB, 64);
  gst_buffer_append_memory (packet.get (), gst_buffer_get_memory (payload, 0));
  gst_buffer_unref (payload);
  ASSERT_EQ (gst_buffer_n_memory (packet.get ()), 2u);

  BufferPtr copy = camrelay::restamp_rtp (packet.get (), 0xA0B0C0D0);
  ASSERT_TRUE (copy);
  EXPECT_EQ (header_of (packet.get ()).timestamp, 0x01020304u);
  EXPECT_EQ (header_of (copy.get ()).timestamp, 0xA0B0C0D0u);
  EXPECT_EQ (header_of (copy.get ()).seq, 77);
  EXPECT_TRUE (header_of (copy.get ()).marker);
  ASSERT_EQ (gst_buffer_n_memory (copy.get ()), 2u);
  EXPECT_EQ (gst_buffer_peek_memory (copy.get (), 1), gst_buffer_peek_memory (packet.get (), 1))
      << "the payload is shared";
  EXPECT_NE (gst_buffer_peek_memory (copy.get (), 0), gst_buffer_peek_memory (packet.get (), 0))
      << "the header is the copy's own";
  EXPECT_EQ (gst_buffer_get_size (copy.get ()), gst_buffer_get_size (packet.get ()));
  EXPECT_EQ (gst_buffer_memcmp (copy.get (), 12, std::string (64, '\xAB').data (), 64), 0);
}

TEST (GopCache, NotRtpIsIgnored)
{
  GopCache cache (kBig);
  BufferPtr junk{gst_buffer_new_allocate (nullptr, 8, nullptr)};
  cache.push (junk.get ());
  BufferPtr v1{gst_buffer_new_allocate (nullptr, 20, nullptr)};
  gst_buffer_memset (v1.get (), 0, 0x40, 20);  // version 1
  cache.push (v1.get ());
  EXPECT_EQ (cache.bytes (), 0u);
  RtpHeader header;
  EXPECT_FALSE (camrelay::read_rtp_header (junk.get (), header));
  EXPECT_FALSE (camrelay::read_rtp_header (v1.get (), header));
}

// ---- keyframes found in the payload (H.264, H.265) --------------------------------

using gopcachetest::packet_with_payload;

// What rtph265pay 1.22 sends for byte-stream input: every packet flagged
// DELTA_UNIT.  With the codec known, the GOP starts at the first packet of
// the frame whose fragment holds the IRAP picture; without, never.
std::vector<BufferPtr>
h265_frames_all_flagged_delta (uint16_t seq, uint32_t timestamp, int frames)
{
  std::vector<BufferPtr> packets;
  for (int f = 0; f < frames; f++, timestamp += 3000) {
    if (f == 0) {
      packets.push_back (packet_with_payload (seq++, timestamp, false, true, {0x40, 0x01, 0x0c}));
      packets.push_back (packet_with_payload (seq++, timestamp, false, true, {0x42, 0x01, 0x01}));
      packets.push_back (packet_with_payload (seq++, timestamp, false, true, {0x44, 0x01, 0xc0}));
      packets.push_back (packet_with_payload (seq++, timestamp, false, true, {0x62, 0x01, 0x93, 0xaf}));
      packets.push_back (packet_with_payload (seq++, timestamp, true, true, {0x62, 0x01, 0x53, 0xaf}));
    } else {
      packets.push_back (packet_with_payload (seq++, timestamp, true, true, {0x02, 0x01, 0xd0}));
    }
  }
  return packets;
}

TEST (GopCache, H265KeyframesFlaggedAsDeltaUnitsAreFoundInThePayload)
{
  GopCache without (kBig);
  GopCache with (kBig);
  camrelay::CapsPtr caps{gst_caps_from_string ("application/x-rtp, media=video, encoding-name=H265")};
  EventPtr caps_event{gst_event_new_caps (caps.get ())};
  with.handle_event (caps_event.get ());
  // A delta frame, then a GOP of three frames.
  BufferPtr before = packet_with_payload (99, 0, true, true, {0x02, 0x01, 0xd0});
  with.push (before.get ());
  for (const BufferPtr &p : h265_frames_all_flagged_delta (100, 3000, 3)) {
    without.push (p.get ());
    with.push (p.get ());
  }
  std::string why;
  EXPECT_TRUE (without.take (kBig, why).empty ());
  EXPECT_EQ (why, "no keyframe yet");
  GopBurst burst = with.take (kBig, why);
  ASSERT_FALSE (burst.empty ()) << why;
  EXPECT_EQ (burst.first_seq, 100) << "from the keyframe's first packet (its VPS)";
  EXPECT_EQ (burst.last_seq, 106);
  EXPECT_EQ (burst.packets.size (), 7u);
  EXPECT_EQ (burst.frames, 3u);

  // The next keyframe, with a GOP cached: its packets before the IRAP one
  // leave the old GOP for the new one.
  for (const BufferPtr &p : h265_frames_all_flagged_delta (107, 12000, 2))
    with.push (p.get ());
  burst = with.take (kBig, why);
  ASSERT_FALSE (burst.empty ()) << why;
  EXPECT_EQ (burst.first_seq, 107);
  EXPECT_EQ (burst.packets.size (), 6u);
  uint64_t bytes = 0;
  for (const BufferPtr &p : burst.packets)
    bytes += gst_buffer_get_size (p.get ());
  EXPECT_EQ (with.bytes (), bytes);
}

TEST (GopCache, EventsClearAndSetTheCodec)
{
  GopCache cache (kBig);
  Feeder feed{cache, 0, 0};
  feed.frame (true);
  EventPtr flush{gst_event_new_flush_stop (TRUE)};
  cache.handle_event (flush.get ());
  EXPECT_EQ (cache.bytes (), 0u);
  feed.frame (true);
  EventPtr stream_start{gst_event_new_stream_start ("other")};
  cache.handle_event (stream_start.get ());
  EXPECT_EQ (cache.bytes (), 0u);
  EventPtr eos{gst_event_new_eos ()};
  feed.frame (true);
  cache.handle_event (eos.get ());
  EXPECT_GT (cache.bytes (), 0u) << "other events leave the GOP";
}

}  // namespace
