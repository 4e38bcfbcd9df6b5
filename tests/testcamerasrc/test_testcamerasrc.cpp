// Tests of testcamerasrc, the synthetic test:// camera: URI parsing, output
// caps and keyframes, decodability, live timestamps, each fault, and bounded
// state changes.  Every wait is an appsink pull or a bus pop with a timeout.
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/gstref.h"
#include "testcamerasrc/testuri.h"

namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using camrelay::BusPtr;
using camrelay::CapsPtr;
using camrelay::ElementPtr;
using camrelay::GCharPtr;
using camrelay::GErrorPtr;
using camrelay::MessagePtr;

// Longest a test waits for something that should happen at once.
constexpr GstClockTime kWait = 5 * GST_SECOND;
constexpr const char *kSmall = "width=320&height=240";

struct SampleDeleter {
  void operator() (GstSample *sample) const noexcept
  {
    if (sample)
      gst_sample_unref (sample);
  }
};
using SamplePtr = std::unique_ptr<GstSample, SampleDeleter>;

double
seconds_since (SteadyClock::time_point start)
{
  return std::chrono::duration<double> (SteadyClock::now () - start).count ();
}

double
seconds (GstClockTime t)
{
  return static_cast<double> (t) / GST_SECOND;
}

ElementPtr
make_source (const std::string &uri)
{
  ElementPtr src{gst_element_factory_make ("testcamerasrc", nullptr)};
  if (src) {
    gst_object_ref_sink (src.get ());
    GError *raw = nullptr;
    EXPECT_TRUE (gst_uri_handler_set_uri (GST_URI_HANDLER (src.get ()), uri.c_str (), &raw))
        << uri << ": " << (raw ? raw->message : "");
    GErrorPtr error{raw};
  }
  return src;
}

// A pipeline around one testcamerasrc named `src`, with appsinks named in
// the description.  Sets it to NULL when it goes out of scope.
class Pipeline {
public:
  explicit Pipeline (const std::string &description)
  {
    GError *raw = nullptr;
    pipeline_.reset (gst_parse_launch (description.c_str (), &raw));
    GErrorPtr error{raw};
    EXPECT_TRUE (pipeline_) << description << ": " << (error ? error->message : "");
    if (pipeline_)
      bus_.reset (gst_element_get_bus (pipeline_.get ()));
  }
  ~Pipeline ()
  {
    if (pipeline_)
      gst_element_set_state (pipeline_.get (), GST_STATE_NULL);
  }

  // testcamerasrc location=URI ! appsink name=sink
  static std::string video (const std::string &uri, const std::string &between = "")
  {
    return "testcamerasrc name=src location=\"" + uri + "\" ! " + between +
           "appsink name=sink sync=false";
  }

  bool ok () const { return pipeline_ != nullptr; }
  GstElement *get () const { return pipeline_.get (); }

  GstStateChangeReturn play () { return set_state (GST_STATE_PLAYING); }
  GstStateChangeReturn set_state (GstState state)
  {
    return gst_element_set_state (pipeline_.get (), state);
  }

  GstAppSink *sink (const char *name = "sink")
  {
    ElementPtr element{gst_bin_get_by_name (GST_BIN (pipeline_.get ()), name)};
    return GST_APP_SINK (element.get ());  // the pipeline keeps it alive
  }

  SamplePtr pull (GstClockTime timeout = kWait, const char *name = "sink")
  {
    return SamplePtr (gst_app_sink_try_pull_sample (sink (name), timeout));
  }

  // The next ERROR within `timeout`, or null.
  MessagePtr wait_error (GstClockTime timeout)
  {
    return MessagePtr (gst_bus_timed_pop_filtered (bus_.get (), timeout, GST_MESSAGE_ERROR));
  }

  // Fails the test on any ERROR already posted.
  void expect_no_error ()
  {
    MessagePtr error = wait_error (0);
    if (error) {
      GError *raw = nullptr;
      gst_message_parse_error (error.get (), &raw, nullptr);
      GErrorPtr owned{raw};
      ADD_FAILURE () << "unexpected ERROR: " << owned->message;
    }
  }

private:
  ElementPtr pipeline_;
  BusPtr bus_;
};

GstBuffer *
buffer_of (const SamplePtr &sample)
{
  return gst_sample_get_buffer (sample.get ());
}

bool
is_keyframe (const SamplePtr &sample)
{
  return !GST_BUFFER_FLAG_IS_SET (buffer_of (sample), GST_BUFFER_FLAG_DELTA_UNIT);
}

const GstStructure *
caps_structure (const SamplePtr &sample)
{
  return gst_caps_get_structure (gst_sample_get_caps (sample.get ()), 0);
}

std::string
caps_name (const SamplePtr &sample)
{
  return gst_structure_get_name (caps_structure (sample));
}

std::pair<int, int>
caps_size (const SamplePtr &sample)
{
  int width = 0, height = 0;
  gst_structure_get_int (caps_structure (sample), "width", &width);
  gst_structure_get_int (caps_structure (sample), "height", &height);
  return {width, height};
}

// NAL unit types in a byte-stream access unit (H.264, or H.265 with `hevc`).
std::vector<int>
nal_types (GstBuffer *buffer, bool hevc)
{
  std::vector<int> types;
  GstMapInfo map;
  if (!gst_buffer_map (buffer, &map, GST_MAP_READ))
    return types;
  for (gsize i = 0; i + 3 < map.size; ++i) {
    if (map.data[i] == 0 && map.data[i + 1] == 0 && map.data[i + 2] == 1) {
      guint8 header = map.data[i + 3];
      types.push_back (hevc ? (header >> 1) & 0x3f : header & 0x1f);
      i += 2;
    }
  }
  gst_buffer_unmap (buffer, &map);
  return types;
}

bool
contains (const std::vector<int> &types, int type)
{
  return std::find (types.begin (), types.end (), type) != types.end ();
}

std::string
error_text (const MessagePtr &message, GQuark *domain = nullptr, gint *code = nullptr)
{
  GError *raw = nullptr;
  gst_message_parse_error (message.get (), &raw, nullptr);
  GErrorPtr error{raw};
  if (domain)
    *domain = error->domain;
  if (code)
    *code = error->code;
  return error->message;
}

// ---- URI --------------------------------------------------------------------

TEST (TestCameraSrcUri, DefaultsAndScheme)
{
  ElementPtr src{gst_element_factory_make ("testcamerasrc", nullptr)};
  ASSERT_TRUE (src);
  gst_object_ref_sink (src.get ());
  ASSERT_TRUE (GST_IS_URI_HANDLER (src.get ()));
  EXPECT_EQ (gst_uri_handler_get_uri_type (GST_URI_HANDLER (src.get ())), GST_URI_SRC);
  const gchar *const *protocols = gst_uri_handler_get_protocols (GST_URI_HANDLER (src.get ()));
  ASSERT_TRUE (protocols && protocols[0]);
  EXPECT_STREQ (protocols[0], camrelay::testcamera::SCHEME);
  EXPECT_EQ (protocols[1], nullptr);

  guint width = 0, height = 0, gop = 0, bitrate = 0;
  gint fps_n = 0, fps_d = 0;
  gchar *raw_location = nullptr;
  g_object_get (src.get (), "width", &width, "height", &height, "gop", &gop, "bitrate",
      &bitrate, "location", &raw_location, nullptr);
  GCharPtr location{raw_location};
  GValue framerate = G_VALUE_INIT;
  g_value_init (&framerate, GST_TYPE_FRACTION);
  g_object_get_property (G_OBJECT (src.get ()), "framerate", &framerate);
  fps_n = gst_value_get_fraction_numerator (&framerate);
  fps_d = gst_value_get_fraction_denominator (&framerate);
  g_value_unset (&framerate);
  EXPECT_EQ (width, 1280u);
  EXPECT_EQ (height, 720u);
  EXPECT_EQ (fps_n, 30);
  EXPECT_EQ (fps_d, 1);
  EXPECT_EQ (gop, 30u);
  EXPECT_EQ (bitrate, 2000u);
  EXPECT_STREQ (location.get (), "test://");
}

TEST (TestCameraSrcUri, EveryKeySetsItsProperty)
{
  const std::string uri = "test://porch?width=640&height=360&framerate=30000/1001&gop=15"
                          "&bitrate=800&codec=h265&audio=opus&drop-after=7&stall-after=2.5"
                          "&stall-duration=0.25&resize-every=3&resize-width=320"
                          "&resize-height=180&garbage-after=4&garbage-duration=1.000000001";
  ElementPtr src = make_source (uri);
  ASSERT_TRUE (src);

  guint width, height, gop, bitrate, resize_width, resize_height;
  gint codec, audio;
  guint64 drop_after, stall_after, stall_duration, resize_every, garbage_after,
      garbage_duration;
  g_object_get (src.get (), "width", &width, "height", &height, "gop", &gop, "bitrate",
      &bitrate, "codec", &codec, "audio", &audio, "drop-after", &drop_after, "stall-after",
      &stall_after, "stall-duration", &stall_duration, "resize-every", &resize_every,
      "resize-width", &resize_width, "resize-height", &resize_height, "garbage-after",
      &garbage_after, "garbage-duration", &garbage_duration, nullptr);
  EXPECT_EQ (width, 640u);
  EXPECT_EQ (height, 360u);
  EXPECT_EQ (gop, 15u);
  EXPECT_EQ (bitrate, 800u);
  EXPECT_EQ (codec, 1);  // h265
  EXPECT_EQ (audio, 4);  // opus
  EXPECT_EQ (drop_after, 7 * GST_SECOND);
  EXPECT_EQ (stall_after, 2500 * GST_MSECOND);
  EXPECT_EQ (stall_duration, 250 * GST_MSECOND);
  EXPECT_EQ (resize_every, 3 * GST_SECOND);
  EXPECT_EQ (resize_width, 320u);
  EXPECT_EQ (resize_height, 180u);
  EXPECT_EQ (garbage_after, 4 * GST_SECOND);
  EXPECT_EQ (garbage_duration, GST_SECOND + 1);

  // The canonical URI lists the same keys in the documented order.
  GCharPtr back{gst_uri_handler_get_uri (GST_URI_HANDLER (src.get ()))};
  EXPECT_EQ (std::string (back.get ()), uri);

  // A new URI resets absent keys to their defaults.
  GError *raw = nullptr;
  ASSERT_TRUE (gst_uri_handler_set_uri (GST_URI_HANDLER (src.get ()), "test://x?gop=5", &raw));
  g_object_get (src.get (), "width", &width, "gop", &gop, "drop-after", &drop_after, nullptr);
  EXPECT_EQ (width, 1280u);
  EXPECT_EQ (gop, 5u);
  EXPECT_EQ (drop_after, 0u);
}

TEST (TestCameraSrcUri, PropertiesUpdateLocation)
{
  ElementPtr src = make_source ("test://cam");
  ASSERT_TRUE (src);
  g_object_set (src.get (), "width", 640u, "height", 480u, "stall-after",
      static_cast<guint64> (1500 * GST_MSECOND), nullptr);
  gst_util_set_object_arg (G_OBJECT (src.get ()), "codec", "jpeg");
  gchar *raw_location = nullptr;
  g_object_get (src.get (), "location", &raw_location, nullptr);
  GCharPtr location{raw_location};
  EXPECT_STREQ (location.get (), "test://cam?width=640&height=480&codec=jpeg&stall-after=1.5");

  // Setting `location` reads back the canonical URI too.
  g_object_set (src.get (), "location", "test://cam?gop=10&width=320&framerate=15", nullptr);
  g_object_get (src.get (), "location", &raw_location, nullptr);
  location.reset (raw_location);
  EXPECT_STREQ (location.get (), "test://cam?width=320&framerate=15&gop=10");

  // NAME comes back as written, so that the canonical URI is accepted again.
  for (const char *uri : {"test://a%40b?gop=10", "test://my%20cam", "test://[::1]"}) {
    g_object_set (src.get (), "location", uri, nullptr);
    g_object_get (src.get (), "location", &raw_location, nullptr);
    location.reset (raw_location);
    EXPECT_STREQ (location.get (), uri);
  }
}

struct BadUri {
  const char *uri;
  const char *named;  // what the error message must name
};

class TestCameraSrcBadUri : public ::testing::TestWithParam<BadUri> {};

TEST_P (TestCameraSrcBadUri, IsRefusedNamingTheKey)
{
  ElementPtr src = make_source ("test://before?gop=7");
  ASSERT_TRUE (src);
  GError *raw = nullptr;
  EXPECT_FALSE (gst_uri_handler_set_uri (GST_URI_HANDLER (src.get ()), GetParam ().uri, &raw));
  GErrorPtr error{raw};
  ASSERT_TRUE (error);
  EXPECT_EQ (error->domain, GST_URI_ERROR);
  if (g_str_has_prefix (GetParam ().uri, "test")) {
    EXPECT_EQ (error->code, GST_URI_ERROR_BAD_URI);
  }
  EXPECT_NE (std::string (error->message).find (GetParam ().named), std::string::npos)
      << "message: " << error->message;

  // Nothing changed.
  guint gop = 0;
  g_object_get (src.get (), "gop", &gop, nullptr);
  EXPECT_EQ (gop, 7u);
}

INSTANTIATE_TEST_SUITE_P (Refused, TestCameraSrcBadUri,
    ::testing::Values (BadUri{"test://a?colour=red", "'colour'"},
        BadUri{"test://a?width=abc", "'width'"}, BadUri{"test://a?width=321", "'width'"},
        BadUri{"test://a?height=8", "'height'"}, BadUri{"test://a?height=", "'height'"},
        BadUri{"test://a?width=-320", "'width'"}, BadUri{"test://a?framerate=0", "'framerate'"},
        BadUri{"test://a?framerate=30/0", "'framerate'"},
        BadUri{"test://a?framerate=1000", "'framerate'"}, BadUri{"test://a?gop=0", "'gop'"},
        BadUri{"test://a?bitrate=2M", "'bitrate'"}, BadUri{"test://a?codec=vp8", "'codec'"},
        BadUri{"test://a?audio=mp3", "'audio'"},
        BadUri{"test://a?drop-after=-1", "'drop-after'"},
        BadUri{"test://a?stall-after=1e3", "'stall-after'"},
        BadUri{"test://a?stall-duration=1.", "'stall-duration'"},
        BadUri{"test://a?resize-every=2s", "'resize-every'"},
        BadUri{"test://a?resize-width=17", "'resize-width'"},
        BadUri{"test://a?garbage-after=0.0000000001", "'garbage-after'"},
        BadUri{"test://a?garbage-duration=nan", "'garbage-duration'"},
        BadUri{"test://a?gop=5&gop=6", "'gop'"}, BadUri{"test://a?gop", "'gop'"},
        BadUri{"test://a?width=%zz", "'width'"}, BadUri{"test://a/path?gop=5", "path"},
        BadUri{"test://a#frag", "fragment"}, BadUri{"rtsp://a?gop=5", "scheme"}));

TEST (TestCameraSrcUri, BadLocationPropertyRefusesToStart)
{
  Pipeline p (Pipeline::video ("test://cam?wdith=320"));
  ASSERT_TRUE (p.ok ());
  EXPECT_EQ (p.play (), GST_STATE_CHANGE_FAILURE);
  MessagePtr error = p.wait_error (kWait);
  ASSERT_TRUE (error);
  EXPECT_NE (error_text (error).find ("'wdith'"), std::string::npos) << error_text (error);
}

TEST (TestCameraSrcUri, LocationCannotChangeWhileRunning)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  ElementPtr src{gst_bin_get_by_name (GST_BIN (p.get ()), "src")};
  GError *raw = nullptr;
  EXPECT_FALSE (gst_uri_handler_set_uri (GST_URI_HANDLER (src.get ()), "test://other", &raw));
  GErrorPtr error{raw};
  ASSERT_TRUE (error);
  EXPECT_TRUE (g_error_matches (error.get (), GST_URI_ERROR, GST_URI_ERROR_BAD_STATE));
  p.expect_no_error ();
}

// ---- video output -------------------------------------------------------------

struct CodecCase {
  const char *codec;
  const char *caps_name;
  const char *decoder;
};

class TestCameraSrcCodec : public ::testing::TestWithParam<CodecCase> {};

TEST_P (TestCameraSrcCodec, ParsedCapsAndKeyframeWithHeadersFirst)
{
  const CodecCase &c = GetParam ();
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&codec=" + c.codec));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);

  SamplePtr first = p.pull ();
  ASSERT_TRUE (first);
  EXPECT_EQ (caps_name (first), c.caps_name);
  EXPECT_EQ (caps_size (first), std::make_pair (320, 240));
  const GstStructure *s = caps_structure (first);
  gboolean parsed = FALSE;
  EXPECT_TRUE (gst_structure_get_boolean (s, "parsed", &parsed) && parsed);
  EXPECT_TRUE (is_keyframe (first));
  if (std::string (c.codec) == "jpeg") {
    GstMapInfo map;
    ASSERT_TRUE (gst_buffer_map (buffer_of (first), &map, GST_MAP_READ));
    ASSERT_GE (map.size, 4u);
    EXPECT_EQ (map.data[0], 0xFF);  // SOI
    EXPECT_EQ (map.data[1], 0xD8);
    gst_buffer_unmap (buffer_of (first), &map);
  } else {
    EXPECT_STREQ (gst_structure_get_string (s, "stream-format"), "byte-stream");
    EXPECT_STREQ (gst_structure_get_string (s, "alignment"), "au");
    bool hevc = std::string (c.codec) == "h265";
    std::vector<int> types = nal_types (buffer_of (first), hevc);
    if (hevc) {
      EXPECT_TRUE (contains (types, 32) && contains (types, 33) && contains (types, 34))
          << "VPS, SPS and PPS in the first keyframe";
      EXPECT_TRUE (contains (types, 19) || contains (types, 20)) << "an IDR slice";
    } else {
      EXPECT_TRUE (contains (types, 7) && contains (types, 8)) << "SPS and PPS";
      EXPECT_TRUE (contains (types, 5)) << "an IDR slice";
    }
  }
  p.expect_no_error ();
}

TEST_P (TestCameraSrcCodec, FramesDecode)
{
  const CodecCase &c = GetParam ();
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&gop=10&codec=" + c.codec,
      std::string (c.decoder) + " ! "));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  for (int i = 0; i < 15; ++i) {
    SamplePtr frame = p.pull ();
    ASSERT_TRUE (frame) << "decoded frame " << i;
    EXPECT_EQ (caps_name (frame), "video/x-raw");
    EXPECT_EQ (caps_size (frame), std::make_pair (320, 240));
  }
  p.expect_no_error ();
}

INSTANTIATE_TEST_SUITE_P (Codecs, TestCameraSrcCodec,
    // Not avdec_*: see the comment on gst-libav in tests/system-plugins/meson.build.
    ::testing::Values (CodecCase{"h264", "video/x-h264", "openh264dec"},
        CodecCase{"h265", "video/x-h265", "libde265dec"},
        CodecCase{"jpeg", "image/jpeg", "jpegdec"}),
    [] (const ::testing::TestParamInfo<CodecCase> &info) { return info.param.codec; });

TEST (TestCameraSrcVideo, KeyframeEveryGopWithParameterSets)
{
  constexpr int kGop = 5;
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&framerate=60&gop=" +
                               std::to_string (kGop)));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  for (int i = 0; i < 4 * kGop + 1; ++i) {
    SamplePtr frame = p.pull ();
    ASSERT_TRUE (frame) << "frame " << i;
    bool expect_key = i % kGop == 0;
    EXPECT_EQ (is_keyframe (frame), expect_key) << "frame " << i;
    std::vector<int> types = nal_types (buffer_of (frame), false);
    EXPECT_EQ (contains (types, 7) && contains (types, 8), expect_key) << "frame " << i;
  }
  p.expect_no_error ();
}

TEST (TestCameraSrcVideo, LiveTimestampsIncrease)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall));
  ASSERT_TRUE (p.ok ());
  EXPECT_EQ (p.set_state (GST_STATE_PAUSED), GST_STATE_CHANGE_NO_PREROLL)
      << "a live source does not preroll";
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);

  SamplePtr first = p.pull ();
  ASSERT_TRUE (first);
  auto start = SteadyClock::now ();
  GstClockTime first_pts = GST_BUFFER_PTS (buffer_of (first));
  GstClockTime previous = first_pts;
  ASSERT_TRUE (GST_CLOCK_TIME_IS_VALID (first_pts));
  constexpr int kFrames = 15;
  for (int i = 1; i <= kFrames; ++i) {
    SamplePtr frame = p.pull ();
    ASSERT_TRUE (frame);
    GstClockTime pts = GST_BUFFER_PTS (buffer_of (frame));
    ASSERT_TRUE (GST_CLOCK_TIME_IS_VALID (pts));
    EXPECT_GT (pts, previous) << "frame " << i;
    EXPECT_NEAR (seconds (pts - previous), 1.0 / 30, 0.005) << "frame " << i;
    EXPECT_TRUE (GST_BUFFER_DTS_IS_VALID (buffer_of (frame)));
    previous = pts;
  }
  // Live: frames come at the frame rate, not as fast as they can be made.
  EXPECT_NEAR (seconds_since (start), seconds (previous - first_pts), 0.2);

  GstQuery *query = gst_query_new_latency ();
  ElementPtr src{gst_bin_get_by_name (GST_BIN (p.get ()), "src")};
  camrelay::PadPtr pad{gst_element_get_static_pad (src.get (), "video")};
  EXPECT_TRUE (gst_pad_query (pad.get (), query));
  gboolean live = FALSE;
  gst_query_parse_latency (query, &live, nullptr, nullptr);
  gst_query_unref (query);
  EXPECT_TRUE (live);
  p.expect_no_error ();
}

// ---- audio ----------------------------------------------------------------------

struct AudioCase {
  const char *audio;
  const char *caps_name;
};

class TestCameraSrcAudio : public ::testing::TestWithParam<AudioCase> {};

TEST_P (TestCameraSrcAudio, AudioPadCarriesEncodedAudio)
{
  const AudioCase &c = GetParam ();
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&audio=" + c.audio) +
              " src.audio ! appsink name=audiosink sync=false");
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  GstClockTime previous = GST_CLOCK_TIME_NONE;
  for (int i = 0; i < 5; ++i) {
    SamplePtr sample = p.pull (kWait, "audiosink");
    ASSERT_TRUE (sample) << "audio buffer " << i;
    EXPECT_EQ (caps_name (sample), c.caps_name);
    GstClockTime pts = GST_BUFFER_PTS (buffer_of (sample));
    ASSERT_TRUE (GST_CLOCK_TIME_IS_VALID (pts));
    if (GST_CLOCK_TIME_IS_VALID (previous)) {
      EXPECT_GT (pts, previous);
    }
    previous = pts;
  }
  EXPECT_TRUE (p.pull ()) << "video flows too";
  p.expect_no_error ();
}

INSTANTIATE_TEST_SUITE_P (Codecs, TestCameraSrcAudio,
    ::testing::Values (AudioCase{"aac", "audio/mpeg"}, AudioCase{"alaw", "audio/x-alaw"},
        AudioCase{"mulaw", "audio/x-mulaw"}, AudioCase{"opus", "audio/x-opus"}),
    [] (const ::testing::TestParamInfo<AudioCase> &info) { return info.param.audio; });

TEST (TestCameraSrcAudio, NoAudioPadByDefault)
{
  ElementPtr src = make_source ("test://cam?width=320&height=240");
  ASSERT_TRUE (src);
  ASSERT_NE (gst_element_set_state (src.get (), GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  camrelay::PadPtr audio{gst_element_get_static_pad (src.get (), "audio")};
  EXPECT_FALSE (audio);
  gst_element_set_state (src.get (), GST_STATE_NULL);
}

// ---- faults -----------------------------------------------------------------------

TEST (TestCameraSrcFaults, DropAfterPostsOneErrorAndStopsSending)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&drop-after=1"));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  SamplePtr first = p.pull ();
  ASSERT_TRUE (first);
  auto start = SteadyClock::now ();
  GstClockTime origin = GST_BUFFER_PTS (buffer_of (first));

  MessagePtr error = p.wait_error (5 * GST_SECOND);
  ASSERT_TRUE (error);
  double at = seconds_since (start);
  EXPECT_GT (at, 0.8);
  EXPECT_LT (at, 1.5);
  GQuark domain;
  gint code;
  EXPECT_EQ (error_text (error, &domain, &code), "connection dropped (simulated)");
  EXPECT_EQ (domain, GST_RESOURCE_ERROR);
  EXPECT_EQ (code, GST_RESOURCE_ERROR_READ);
  ElementPtr src{gst_bin_get_by_name (GST_BIN (p.get ()), "src")};
  EXPECT_EQ (GST_MESSAGE_SRC (error.get ()), GST_OBJECT (src.get ()));

  // Everything queued before the drop is before drop-after; nothing after.
  while (SamplePtr frame = p.pull (300 * GST_MSECOND))
    EXPECT_LT (GST_BUFFER_PTS (buffer_of (frame)) - origin, GST_SECOND);
  EXPECT_FALSE (p.wait_error (300 * GST_MSECOND)) << "one error only";
}

TEST (TestCameraSrcFaults, FaultsHitAudioAndVideoTogether)
{
  // x264enc offsets its timestamps by 1000 hours; the faults must still
  // happen at the same running time in both streams.
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall +
                               "&audio=alaw&stall-after=0.4&stall-duration=0.4&drop-after=1.2") +
              " src.audio ! appsink name=audiosink sync=false");
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE (p.pull ());
  auto start = SteadyClock::now ();
  MessagePtr error = p.wait_error (5 * GST_SECOND);
  ASSERT_TRUE (error);
  EXPECT_GT (seconds_since (start), 1.0);
  EXPECT_LT (seconds_since (start), 1.7);

  // Each stream shows the stall as one gap of about 0.4 s, then stops.
  for (const char *sink : {"sink", "audiosink"}) {
    SCOPED_TRACE (sink);
    std::vector<GstClockTime> times;
    while (SamplePtr sample = p.pull (200 * GST_MSECOND, sink)) {
      GstSegment *segment = gst_sample_get_segment (sample.get ());
      times.push_back (gst_segment_to_running_time (segment, GST_FORMAT_TIME,
          GST_BUFFER_PTS (buffer_of (sample))));
    }
    ASSERT_GE (times.size (), 2u);
    int gaps = 0;
    for (size_t i = 1; i < times.size (); ++i) {
      if (times[i] - times[i - 1] > 200 * GST_MSECOND) {
        gaps++;
        EXPECT_NEAR (seconds (times[i] - times[i - 1]), 0.4, 0.1);
      }
    }
    EXPECT_EQ (gaps, 1);
    EXPECT_LT (seconds (times.back () - times.front ()), 1.25) << "nothing after drop-after";
  }
  EXPECT_FALSE (p.wait_error (0)) << "one error only";
}

TEST (TestCameraSrcFaults, StallStopsBuffersThenResumes)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall +
                               "&gop=60&stall-after=0.5&stall-duration=0.7"));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  SamplePtr first = p.pull ();
  ASSERT_TRUE (first);
  GstClockTime origin = GST_BUFFER_PTS (buffer_of (first));
  GstClockTime previous = origin;

  // Up to the stall, frames at the frame rate; then a gap of the stall.
  SamplePtr frame;
  for (;;) {
    frame = p.pull (2 * GST_SECOND);
    ASSERT_TRUE (frame) << "frames resume after the stall";
    GstClockTime pts = GST_BUFFER_PTS (buffer_of (frame));
    if (pts - previous > 100 * GST_MSECOND)
      break;
    previous = pts;
  }
  GstClockTime resumed = GST_BUFFER_PTS (buffer_of (frame));
  EXPECT_NEAR (seconds (previous - origin), 0.5, 0.05) << "last frame before the stall";
  EXPECT_NEAR (seconds (resumed - origin), 1.2, 0.05) << "first frame after the stall";
  EXPECT_TRUE (GST_BUFFER_FLAG_IS_SET (buffer_of (frame), GST_BUFFER_FLAG_DISCONT));

  // The requested keyframe follows within a few frames (gop=60 would be 2 s).
  bool keyframe = is_keyframe (frame);
  for (int i = 0; i < 5 && !keyframe; ++i) {
    SamplePtr next = p.pull ();
    ASSERT_TRUE (next);
    keyframe = is_keyframe (next);
  }
  EXPECT_TRUE (keyframe);
  p.expect_no_error ();
}

TEST (TestCameraSrcFaults, EndlessStallSendsNothingAndNoError)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&stall-after=0.3"));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  SamplePtr first = p.pull ();
  ASSERT_TRUE (first);
  GstClockTime origin = GST_BUFFER_PTS (buffer_of (first));
  int frames = 1;
  while (SamplePtr frame = p.pull (GST_SECOND)) {
    EXPECT_LT (GST_BUFFER_PTS (buffer_of (frame)) - origin, 300 * GST_MSECOND);
    ++frames;
  }
  EXPECT_GE (frames, 5);
  EXPECT_FALSE (p.wait_error (0));
  // Still a healthy element: it stops at once.
  auto start = SteadyClock::now ();
  EXPECT_EQ (p.set_state (GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_LT (seconds_since (start), 1.0);
}

TEST (TestCameraSrcFaults, ResizeEveryAlternatesCapsAndParameterSets)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&gop=300&resize-every=0.4",
      "openh264dec ! "));
  ASSERT_TRUE (p.ok ());
  // Check the encoded stream on the src pad, and that it decodes at each size.
  ElementPtr src{gst_bin_get_by_name (GST_BIN (p.get ()), "src")};
  camrelay::PadPtr pad{gst_element_get_static_pad (src.get (), "video")};
  struct Seen {
    std::vector<std::pair<int, int>> sizes;  // from caps events, in order
    int keyframes_after_caps = 0;
    bool caps_pending = false;
  } seen;
  gst_pad_add_probe (pad.get (),
      static_cast<GstPadProbeType> (
          GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      [] (GstPad *, GstPadProbeInfo *info, gpointer data) {
        Seen &seen = *static_cast<Seen *> (data);
        if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER) {
          GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
          if (seen.caps_pending && !GST_BUFFER_FLAG_IS_SET (buffer, GST_BUFFER_FLAG_DELTA_UNIT)) {
            std::vector<int> types = nal_types (buffer, false);
            if (contains (types, 7) && contains (types, 8))
              seen.keyframes_after_caps++;
          }
          seen.caps_pending = false;
        } else if (GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_CAPS) {
          GstCaps *caps;
          gst_event_parse_caps (GST_PAD_PROBE_INFO_EVENT (info), &caps);
          const GstStructure *s = gst_caps_get_structure (caps, 0);
          int width = 0, height = 0;
          gst_structure_get_int (s, "width", &width);
          gst_structure_get_int (s, "height", &height);
          if (seen.sizes.empty () || seen.sizes.back () != std::make_pair (width, height)) {
            seen.sizes.emplace_back (width, height);
            seen.caps_pending = true;
          }
        }
        return GST_PAD_PROBE_OK;
      },
      &seen, nullptr);
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);

  // Decoded frames: 320x240, then 160x120, then 320x240 again.
  std::vector<std::pair<int, int>> decoded;
  auto start = SteadyClock::now ();
  while (decoded.size () < 3 && seconds_since (start) < 5) {
    SamplePtr frame = p.pull ();
    ASSERT_TRUE (frame);
    if (decoded.empty () || decoded.back () != caps_size (frame))
      decoded.push_back (caps_size (frame));
  }
  gst_element_set_state (p.get (), GST_STATE_NULL);  // the probe's data lives on our stack

  std::vector<std::pair<int, int>> expected = {{320, 240}, {160, 120}, {320, 240}};
  EXPECT_EQ (decoded, expected);
  ASSERT_GE (seen.sizes.size (), 3u);
  seen.sizes.resize (3);
  EXPECT_EQ (seen.sizes, expected);
  EXPECT_GE (seen.keyframes_after_caps, 3) << "every size starts with a keyframe + SPS/PPS";
  p.expect_no_error ();
}

TEST (TestCameraSrcFaults, GarbageProducesNoFramesThenRecovers)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall +
                               "&gop=60&garbage-after=0.4&garbage-duration=0.8"));
  ASSERT_TRUE (p.ok ());
  ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
  SamplePtr first = p.pull ();
  ASSERT_TRUE (first);
  GstClockTime origin = GST_BUFFER_PTS (buffer_of (first));
  GstClockTime previous = origin;
  SamplePtr frame;
  for (;;) {
    frame = p.pull (2 * GST_SECOND);
    ASSERT_TRUE (frame) << "frames resume after the garbage";
    GstClockTime pts = GST_BUFFER_PTS (buffer_of (frame));
    if (pts - previous > 100 * GST_MSECOND)
      break;
    previous = pts;
  }
  EXPECT_NEAR (seconds (previous - origin), 0.4, 0.05) << "last frame before the garbage";
  EXPECT_NEAR (seconds (GST_BUFFER_PTS (buffer_of (frame)) - origin), 1.2, 0.1)
      << "first frame after the garbage";
  bool keyframe = is_keyframe (frame);
  for (int i = 0; i < 5 && !keyframe; ++i) {
    SamplePtr next = p.pull ();
    ASSERT_TRUE (next);
    keyframe = is_keyframe (next);
  }
  EXPECT_TRUE (keyframe) << "a keyframe soon after the garbage";
  p.expect_no_error ();
}

TEST (TestCameraSrcFaults, EndlessGarbageProducesNoFrameAndNoError)
{
  for (const char *codec : {"h264", "jpeg"}) {
    SCOPED_TRACE (codec);
    Pipeline p (Pipeline::video (
        std::string ("test://cam?") + kSmall + "&garbage-after=0.3&codec=" + codec));
    ASSERT_TRUE (p.ok ());
    ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
    SamplePtr first = p.pull ();
    ASSERT_TRUE (first);
    GstClockTime origin = GST_BUFFER_PTS (buffer_of (first));
    while (SamplePtr frame = p.pull (GST_SECOND))
      EXPECT_LT (GST_BUFFER_PTS (buffer_of (frame)) - origin, 300 * GST_MSECOND);
    p.expect_no_error ();
  }
}

// ---- state changes --------------------------------------------------------------------

TEST (TestCameraSrcLifecycle, NullIsFastFromEveryState)
{
  struct Case {
    const char *query;
    GstState state;
    GstClockTime settle;  // time spent in `state` before going to NULL
  };
  const Case cases[] = {
    {"", GST_STATE_READY, 0},
    {"", GST_STATE_PAUSED, 0},
    {"", GST_STATE_PLAYING, 0},                       // mid-start
    {"", GST_STATE_PLAYING, 300 * GST_MSECOND},       // streaming
    {"&audio=aac", GST_STATE_PLAYING, 300 * GST_MSECOND},
    {"&stall-after=0.1", GST_STATE_PLAYING, 400 * GST_MSECOND},
    {"&garbage-after=0.1", GST_STATE_PLAYING, 400 * GST_MSECOND},
    {"&drop-after=0.1", GST_STATE_PLAYING, 400 * GST_MSECOND},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE (std::string (gst_element_state_get_name (c.state)) + " " + c.query);
    Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + c.query));
    ASSERT_TRUE (p.ok ());
    ASSERT_NE (p.set_state (c.state), GST_STATE_CHANGE_FAILURE);
    if (c.settle)
      p.pull (c.settle);  // waits at most `settle`
    auto start = SteadyClock::now ();
    EXPECT_EQ (p.set_state (GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    EXPECT_LT (seconds_since (start), 1.0);
  }
}

TEST (TestCameraSrcLifecycle, RestartIsANewStreamWithItsOwnFaults)
{
  Pipeline p (Pipeline::video (std::string ("test://cam?") + kSmall + "&drop-after=0.3"));
  ASSERT_TRUE (p.ok ());
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE (round);
    ASSERT_NE (p.play (), GST_STATE_CHANGE_FAILURE);
    SamplePtr frame = p.pull ();
    ASSERT_TRUE (frame);
    EXPECT_TRUE (is_keyframe (frame)) << "a new stream starts with a keyframe";
    EXPECT_TRUE (p.wait_error (3 * GST_SECOND)) << "drop-after again";
    // appsink keeps its queue across PAUSED->READY: take what the dropped
    // connection let through, so that the next round starts empty.
    while (p.pull (100 * GST_MSECOND)) {
    }
    ASSERT_EQ (p.set_state (GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  }
}

TEST (TestCameraSrcLifecycle, ManyStartStopCycles)
{
  ElementPtr src = make_source ("test://cam?width=160&height=120&audio=alaw");
  ASSERT_TRUE (src);
  for (int i = 0; i < 20; ++i) {
    // PAUSED: a live source builds everything but sends nothing yet.
    ASSERT_NE (gst_element_set_state (src.get (), GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
    camrelay::PadPtr audio{gst_element_get_static_pad (src.get (), "audio")};
    EXPECT_TRUE (audio) << "cycle " << i;
    ASSERT_EQ (gst_element_set_state (src.get (), GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    audio.reset (gst_element_get_static_pad (src.get (), "audio"));
    EXPECT_FALSE (audio) << "cycle " << i;
  }
  EXPECT_EQ (GST_BIN_NUMCHILDREN (GST_BIN (src.get ())), 0);
}

}  // namespace
