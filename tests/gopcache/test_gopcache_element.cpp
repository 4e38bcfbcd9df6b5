// Tests of the gopcache element: GstHarness for its contract (passthrough,
// get-burst, limits, clearing), and a real H.264 payloader whose burst must
// decode from its first frame.
#include <gst/app/gstappsrc.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/gstref.h"
#include "rtp_packets.h"

namespace {

using camrelay::BufferPtr;
using camrelay::ElementPtr;
using gopcachetest::make_packet;
using gopcachetest::rtp_fields;
using BufferListPtr = camrelay::MiniObjectPtr<GstBufferList>;

constexpr guint64 kPacketBytes = 12 + 100;  // make_packet's default
constexpr const char *kRtpCaps =
    "application/x-rtp, media=(string)video, clock-rate=(int)90000, "
    "encoding-name=(string)H264, payload=(int)96";

struct HarnessDeleter {
  void operator() (GstHarness *h) const noexcept { gst_harness_teardown (h); }
};
using HarnessPtr = std::unique_ptr<GstHarness, HarnessDeleter>;

HarnessPtr
make_harness ()
{
  HarnessPtr h{gst_harness_new ("gopcache")};
  gst_harness_set_src_caps_str (h.get (), kRtpCaps);
  return h;
}

BufferListPtr
get_burst (GstElement *element, guint64 max_bytes)
{
  GstBufferList *list = nullptr;
  g_signal_emit_by_name (element, "get-burst", max_bytes, &list);
  return BufferListPtr{list};
}

std::vector<GstBuffer *>
packets_of (GstBufferList *list)
{
  std::vector<GstBuffer *> packets;
  for (guint i = 0; i < gst_buffer_list_length (list); i++)
    packets.push_back (gst_buffer_list_get (list, i));
  return packets;
}

guint64
bytes_of (GstElement *element)
{
  guint64 bytes = 0;
  g_object_get (element, "bytes", &bytes, nullptr);
  return bytes;
}

// Pushes a frame of `packets` packets and checks that each comes out as it
// went in (passthrough).
struct Feeder {
  GstHarness *h;
  uint16_t seq = 100;
  uint32_t timestamp = 90000;

  void frame (bool keyframe, unsigned packets = 2)
  {
    for (unsigned i = 0; i < packets; i++) {
      BufferPtr packet = make_packet (seq++, timestamp, i + 1 == packets, keyframe);
      GstBuffer *in = packet.get ();
      ASSERT_EQ (gst_harness_push (h, packet.release ()), GST_FLOW_OK);
      BufferPtr out{gst_harness_pull (h)};
      ASSERT_EQ (out.get (), in) << "passthrough: the same buffer comes out";
    }
    timestamp += 3000;
  }
};

TEST (GopCacheElement, DefaultsAndPads)
{
  ElementPtr element{gst_element_factory_make ("gopcache", nullptr)};
  ASSERT_TRUE (element);
  guint64 max_bytes = 0;
  g_object_get (element.get (), "max-bytes", &max_bytes, nullptr);
  EXPECT_EQ (max_bytes, 8u * 1024 * 1024);
  EXPECT_EQ (bytes_of (element.get ()), 0u);
  GParamSpec *bytes = g_object_class_find_property (G_OBJECT_GET_CLASS (element.get ()), "bytes");
  ASSERT_TRUE (bytes);
  EXPECT_FALSE (bytes->flags & G_PARAM_WRITABLE);
  EXPECT_FALSE (get_burst (element.get (), 0)) << "nothing seen yet";
}

TEST (GopCacheElement, KeyframesInBurstOut)
{
  HarnessPtr h = make_harness ();
  Feeder feed{h.get ()};
  feed.frame (false);  // before any keyframe: passed on, not kept
  EXPECT_EQ (bytes_of (h->element), 0u);
  EXPECT_FALSE (get_burst (h->element, 0));

  const uint16_t key_seq = feed.seq;
  feed.frame (true, 3);
  feed.frame (false, 2);
  const uint32_t newest = feed.timestamp;
  feed.frame (false, 1);
  EXPECT_EQ (bytes_of (h->element), 6 * kPacketBytes);

  BufferListPtr burst = get_burst (h->element, 0);
  ASSERT_TRUE (burst);
  ASSERT_EQ (gst_buffer_list_length (burst.get ()), 6u);
  const std::vector<uint32_t> expected{newest - 2, newest - 2, newest - 2, newest - 1, newest - 1,
      newest};
  for (guint i = 0; i < 6; i++) {
    GstBuffer *packet = gst_buffer_list_get (burst.get (), i);
    EXPECT_EQ (rtp_fields (packet).seq, static_cast<uint16_t> (key_seq + i)) << i;
    EXPECT_EQ (rtp_fields (packet).timestamp, expected[i]) << i;
  }
  EXPECT_FALSE (GST_BUFFER_FLAG_IS_SET (gst_buffer_list_get (burst.get (), 0),
      GST_BUFFER_FLAG_DELTA_UNIT));
  // Taking a burst leaves the cache as it was: the next receiver gets one too.
  EXPECT_EQ (bytes_of (h->element), 6 * kPacketBytes);
  BufferListPtr again = get_burst (h->element, 0);
  ASSERT_TRUE (again);
  EXPECT_EQ (gst_buffer_list_length (again.get ()), 6u);

  // A new keyframe starts a new GOP.
  const uint16_t next_key = feed.seq;
  feed.frame (true, 1);
  burst = get_burst (h->element, 0);
  ASSERT_TRUE (burst);
  ASSERT_EQ (gst_buffer_list_length (burst.get ()), 1u);
  EXPECT_EQ (rtp_fields (gst_buffer_list_get (burst.get (), 0)).seq, next_key);
}

TEST (GopCacheElement, MaxBytesDropsAGopUntilTheNextKeyframe)
{
  HarnessPtr h = make_harness ();
  g_object_set (h->element, "max-bytes", static_cast<guint64> (3 * kPacketBytes), nullptr);
  Feeder feed{h.get ()};
  feed.frame (true, 2);
  feed.frame (false, 1);
  EXPECT_EQ (bytes_of (h->element), 3 * kPacketBytes);
  EXPECT_TRUE (get_burst (h->element, 0));
  feed.frame (false, 1);  // over: the packet still goes through
  EXPECT_EQ (bytes_of (h->element), 0u);
  EXPECT_FALSE (get_burst (h->element, 0));
  feed.frame (false, 1);
  EXPECT_FALSE (get_burst (h->element, 0));
  feed.frame (true, 1);
  EXPECT_EQ (bytes_of (h->element), kPacketBytes);
  EXPECT_TRUE (get_burst (h->element, 0));

  g_object_set (h->element, "max-bytes", static_cast<guint64> (0), nullptr);
  feed.frame (true, 1);
  EXPECT_EQ (bytes_of (h->element), 0u) << "0 keeps nothing";
  EXPECT_FALSE (get_burst (h->element, 0));
}

TEST (GopCacheElement, GetBurstLimit)
{
  HarnessPtr h = make_harness ();
  Feeder feed{h.get ()};
  feed.frame (true, 2);
  feed.frame (false, 2);
  EXPECT_FALSE (get_burst (h->element, 4 * kPacketBytes - 1));
  EXPECT_EQ (bytes_of (h->element), 4 * kPacketBytes) << "a refused burst drops nothing";
  BufferListPtr burst = get_burst (h->element, 4 * kPacketBytes);
  ASSERT_TRUE (burst);
  EXPECT_EQ (gst_buffer_list_length (burst.get ()), 4u);
}

TEST (GopCacheElement, ReorderedFramesGiveNoBurst)
{
  HarnessPtr h = make_harness ();
  Feeder feed{h.get ()};
  feed.frame (true);
  feed.timestamp += 3000;
  feed.frame (false);  // P
  feed.timestamp -= 6000;
  feed.frame (false);  // B, shown before the P
  EXPECT_FALSE (get_burst (h->element, 0));
}

TEST (GopCacheElement, FlushForgetsTheGop)
{
  HarnessPtr h = make_harness ();
  Feeder feed{h.get ()};
  feed.frame (true);
  ASSERT_TRUE (get_burst (h->element, 0));
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_flush_start ()));
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_flush_stop (TRUE)));
  EXPECT_EQ (bytes_of (h->element), 0u);
  EXPECT_FALSE (get_burst (h->element, 0));
  GstSegment segment;
  gst_segment_init (&segment, GST_FORMAT_TIME);
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_segment (&segment)));
  feed.frame (false);
  EXPECT_FALSE (get_burst (h->element, 0)) << "after a flush, a GOP starts at a keyframe";
  feed.frame (true);
  EXPECT_TRUE (get_burst (h->element, 0));
}

TEST (GopCacheElement, StreamStartForgetsTheGop)
{
  HarnessPtr h = make_harness ();
  Feeder feed{h.get ()};
  feed.frame (true);
  ASSERT_TRUE (get_burst (h->element, 0));
  ASSERT_TRUE (gst_harness_push_event (h.get (), gst_event_new_stream_start ("another")));
  EXPECT_EQ (bytes_of (h->element), 0u);
  EXPECT_FALSE (get_burst (h->element, 0));
  feed.frame (true);
  EXPECT_TRUE (get_burst (h->element, 0));
}

TEST (GopCacheElement, StoppingForgetsTheGop)
{
  HarnessPtr h = make_harness ();
  Feeder feed{h.get ()};
  feed.frame (true);
  ASSERT_EQ (gst_element_set_state (h->element, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ (bytes_of (h->element), 0u);
  EXPECT_FALSE (get_burst (h->element, 0));
}

TEST (GopCacheElement, BufferListsAreCachedToo)
{
  HarnessPtr h = make_harness ();
  GstBufferList *list = gst_buffer_list_new ();
  for (uint16_t i = 0; i < 4; i++)
    gst_buffer_list_add (list, make_packet (10 + i, 3000 * (i / 2), i % 2 == 1, i < 2).release ());
  ASSERT_EQ (gst_pad_push_list (h->srcpad, list), GST_FLOW_OK);
  for (int i = 0; i < 4; i++)
    BufferPtr{gst_harness_pull (h.get ())};
  BufferListPtr burst = get_burst (h->element, 0);
  ASSERT_TRUE (burst);
  EXPECT_EQ (gst_buffer_list_length (burst.get ()), 4u);
  EXPECT_EQ (rtp_fields (gst_buffer_list_get (burst.get (), 0)).seq, 10);
}

// get-burst from another thread while packets flow: every burst is whole
// (from a keyframe's first packet, contiguous, in time order).
TEST (GopCacheElement, BurstsWhileStreaming)
{
  HarnessPtr h = make_harness ();
  GstElement *element = h->element;
  std::atomic<bool> done{false};
  std::atomic<unsigned> bursts{0};
  std::thread taker ([&] {
    for (unsigned i = 0; i < 1000000 && !done; i++) {
      BufferListPtr burst = get_burst (element, 0);
      if (!burst)
        continue;
      bursts++;
      const std::vector<GstBuffer *> packets = packets_of (burst.get ());
      EXPECT_FALSE (GST_BUFFER_FLAG_IS_SET (packets[0], GST_BUFFER_FLAG_DELTA_UNIT));
      for (size_t k = 1; k < packets.size (); k++) {
        EXPECT_EQ (rtp_fields (packets[k]).seq, static_cast<uint16_t> (rtp_fields (packets[0]).seq + k));
        EXPECT_GE (rtp_fields (packets[k]).timestamp, rtp_fields (packets[k - 1]).timestamp);
      }
    }
  });
  Feeder feed{h.get ()};
  // Until the other thread took bursts enough times to overlap pushes.
  int frame = 0;
  for (; frame < 200000 && (frame < 300 || bursts < 100); frame++)
    feed.frame (frame % 10 == 0, 3);
  EXPECT_GE (bursts.load (), 100u);
  done = true;
  taker.join ();
  BufferListPtr last = get_burst (element, 0);
  ASSERT_TRUE (last);
  EXPECT_EQ (gst_buffer_list_length (last.get ()), 3u * (frame % 10 == 0 ? 10 : frame % 10));
}

// ---- with a real payloader -----------------------------------------------------

// Runs `description` (which names a gopcache "cache") to EOS and returns its
// burst.  Each wait is bounded.
BufferListPtr
burst_of_pipeline (const std::string &description)
{
  GError *error = nullptr;
  ElementPtr pipeline{gst_parse_launch (description.c_str (), &error)};
  EXPECT_FALSE (error) << (error ? error->message : "");
  g_clear_error (&error);
  if (!pipeline)
    return nullptr;
  EXPECT_NE (gst_element_set_state (pipeline.get (), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
  camrelay::MessagePtr message{gst_bus_timed_pop_filtered (bus.get (), 30 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR))};
  EXPECT_TRUE (message && GST_MESSAGE_TYPE (message.get ()) == GST_MESSAGE_EOS)
      << "the encoding pipeline did not reach EOS";
  ElementPtr cache{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "cache")};
  BufferListPtr burst = cache ? get_burst (cache.get (), 0) : nullptr;
  gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  return burst;
}

struct Decoded {
  unsigned pictures = 0;
  bool eos = false;  // else an error stopped it
};

// How to decode what a payloader sent.
struct Codec {
  const char *caps;
  const char *decoder;  // from the depayloader to the decoder
};
const Codec kH264{kRtpCaps, "rtph264depay ! h264parse ! openh264dec"};
const Codec kH265{"application/x-rtp, media=(string)video, clock-rate=(int)90000, "
    "encoding-name=(string)H265, payload=(int)96", "rtph265depay ! h265parse ! libde265dec"};

// Depayloads and decodes `packets` from the first, to EOS or an error.
Decoded
decode (const std::vector<GstBuffer *> &packets, const Codec &codec = kH264)
{
  GError *error = nullptr;
  ElementPtr pipeline{gst_parse_launch ((std::string ("appsrc name=src format=time caps=\"")
      + codec.caps + "\" ! " + codec.decoder + " ! fakesink name=sink sync=false").c_str (), &error)};
  EXPECT_FALSE (error) << (error ? error->message : "");
  g_clear_error (&error);
  if (!pipeline)
    return {};
  ElementPtr src{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "src")};
  ElementPtr sink{gst_bin_get_by_name (GST_BIN (pipeline.get ()), "sink")};
  camrelay::PadPtr sink_pad{gst_element_get_static_pad (sink.get (), "sink")};
  std::atomic<unsigned> pictures{0};
  gst_pad_add_probe (sink_pad.get (), GST_PAD_PROBE_TYPE_BUFFER,
      [] (GstPad *, GstPadProbeInfo *, gpointer data) {
        (*static_cast<std::atomic<unsigned> *> (data))++;
        return GST_PAD_PROBE_OK;
      }, &pictures, nullptr);
  EXPECT_NE (gst_element_set_state (pipeline.get (), GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  for (GstBuffer *packet : packets)
    EXPECT_EQ (gst_app_src_push_buffer (GST_APP_SRC (src.get ()), gst_buffer_ref (packet)),
        GST_FLOW_OK);
  gst_app_src_end_of_stream (GST_APP_SRC (src.get ()));
  camrelay::BusPtr bus{gst_element_get_bus (pipeline.get ())};
  camrelay::MessagePtr message{gst_bus_timed_pop_filtered (bus.get (), 30 * GST_SECOND,
      static_cast<GstMessageType> (GST_MESSAGE_EOS | GST_MESSAGE_ERROR))};
  EXPECT_TRUE (message) << "the decoding pipeline neither ended nor failed";
  gst_element_set_state (pipeline.get (), GST_STATE_NULL);
  return Decoded{pictures, message && GST_MESSAGE_TYPE (message.get ()) == GST_MESSAGE_EOS};
}

unsigned
frames_in (const std::vector<GstBuffer *> &packets)
{
  unsigned frames = 0;
  for (size_t i = 0; i < packets.size (); i++)
    if (i == 0 || rtp_fields (packets[i - 1]).marker)
      frames++;
  return frames;
}

// 40 frames with a keyframe every 15: the burst is frames 30 to 39, each cut
// into several packets (mtu), and every one of them decodes.
TEST (GopCacheElement, ABurstFromRtph264payDecodesFromItsFirstFrame)
{
  BufferListPtr burst = burst_of_pipeline (
      "videotestsrc num-buffers=40 pattern=ball ! "
      "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! "
      "x264enc key-int-max=15 bframes=0 speed-preset=ultrafast ! "
      "video/x-h264,profile=constrained-baseline ! "
      "rtph264pay config-interval=-1 mtu=400 ! gopcache name=cache ! fakesink");
  ASSERT_TRUE (burst);
  const std::vector<GstBuffer *> packets = packets_of (burst.get ());
  const unsigned frames = frames_in (packets);
  EXPECT_EQ (frames, 10u);
  EXPECT_GT (packets.size (), frames) << "frames of several packets";
  for (size_t i = 1; i < packets.size (); i++) {
    EXPECT_EQ (rtp_fields (packets[i]).seq, static_cast<uint16_t> (rtp_fields (packets[0]).seq + i));
    EXPECT_GE (rtp_fields (packets[i]).timestamp, rtp_fields (packets[i - 1]).timestamp);
  }
  EXPECT_EQ (rtp_fields (packets.back ()).timestamp - rtp_fields (packets.front ()).timestamp,
      frames - 1) << "older frames squeezed one tick apart";
  const Decoded decoded = decode (packets);
  EXPECT_TRUE (decoded.eos) << "decoding failed";
  EXPECT_EQ (decoded.pictures, frames);

  // The control: the same packets from the second frame on (as a receiver
  // joining without the burst would get them) do not decode.
  size_t second = 0;
  while (second < packets.size () && !rtp_fields (packets[second]).marker)
    second++;
  EXPECT_EQ (decode (std::vector<GstBuffer *> (packets.begin () + second + 1, packets.end ())).pictures, 0u);
}

TEST (GopCacheElement, NoBurstFromAStreamWithBFrames)
{
  BufferListPtr burst = burst_of_pipeline (
      "videotestsrc num-buffers=40 pattern=ball ! "
      "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! "
      "x264enc key-int-max=15 bframes=2 b-adapt=false speed-preset=ultrafast ! "
      "video/x-h264,profile=main ! "
      "rtph264pay config-interval=-1 ! gopcache name=cache ! fakesink");
  EXPECT_FALSE (burst);
}

// The same with H.265, fed as camrelay feeds it (byte-stream access units,
// parameter sets before each keyframe by h265parse): rtph265pay 1.22 then
// flags every packet as a delta unit, and the keyframes are found in the
// payload (IRAP fragments).
TEST (GopCacheElement, ABurstFromRtph265payDecodesFromItsFirstFrame)
{
  BufferListPtr burst = burst_of_pipeline (
      "videotestsrc num-buffers=40 pattern=ball ! "
      "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! "
      "x265enc key-int-max=15 option-string=bframes=0 speed-preset=ultrafast ! "
      "h265parse config-interval=-1 ! video/x-h265,stream-format=byte-stream,alignment=au ! "
      "rtph265pay mtu=400 ! gopcache name=cache ! fakesink");
  ASSERT_TRUE (burst);
  const std::vector<GstBuffer *> packets = packets_of (burst.get ());
  const unsigned frames = frames_in (packets);
  EXPECT_EQ (frames, 10u);
  EXPECT_GT (packets.size (), frames) << "frames of several packets";
  const Decoded decoded = decode (packets, kH265);
  EXPECT_TRUE (decoded.eos) << "decoding failed";
  EXPECT_EQ (decoded.pictures, frames);
}

}  // namespace
