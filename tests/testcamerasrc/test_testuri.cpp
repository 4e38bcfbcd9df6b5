// testcamerasrc's test:// URIs on their own (plugins/testcamerasrc/testuri.h):
// parsing into settings, the canonical form, and errors that name the key.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <string>

#include "common/gstref.h"
#include "testcamerasrc/testuri.h"

using namespace camrelay::testcamera;

namespace {

TEST (TestUri, NameAloneGivesTheDefaultsAndItself)
{
  Settings s;
  s.width = 1;  // overwritten
  GError *error = nullptr;
  ASSERT_TRUE (parse_uri ("test://cam%201", s, &error));
  EXPECT_EQ (s.name, "cam%201");
  const Settings defaults;
  EXPECT_EQ (s.width, defaults.width);
  EXPECT_EQ (s.height, defaults.height);
  EXPECT_EQ (s.codec, GST_TEST_CAMERA_SRC_CODEC_H264);
  EXPECT_EQ (s.audio, GST_TEST_CAMERA_SRC_AUDIO_NONE);
  EXPECT_EQ (build_uri (s), "test://cam%201");
}

TEST (TestUri, EveryKeyParsesAndComesBackInTheCanonicalOrder)
{
  Settings s;
  GError *error = nullptr;
  ASSERT_TRUE (parse_uri ("test://x?garbage-duration=1&garbage-after=4&resize-height=180"
                          "&resize-width=320&resize-every=3&stall-duration=0.25&stall-after=2"
                          "&drop-after=1.5&audio=opus&codec=h265&bitrate=500&gop=10"
                          "&framerate=15/2&height=360&width=640",
      s, &error))
      << error->message;
  EXPECT_EQ (s.width, 640u);
  EXPECT_EQ (s.height, 360u);
  EXPECT_EQ (s.fps_n, 15);
  EXPECT_EQ (s.fps_d, 2);
  EXPECT_EQ (s.gop, 10u);
  EXPECT_EQ (s.bitrate, 500u);
  EXPECT_EQ (s.codec, GST_TEST_CAMERA_SRC_CODEC_H265);
  EXPECT_EQ (s.audio, GST_TEST_CAMERA_SRC_AUDIO_OPUS);
  EXPECT_EQ (s.drop_after, 1500 * GST_MSECOND);
  EXPECT_EQ (s.stall_after, 2 * GST_SECOND);
  EXPECT_EQ (s.stall_duration, 250 * GST_MSECOND);
  EXPECT_EQ (s.resize_every, 3 * GST_SECOND);
  EXPECT_EQ (s.resized_width (), 320u);
  EXPECT_EQ (s.resized_height (), 180u);
  EXPECT_EQ (s.garbage_after, 4 * GST_SECOND);
  EXPECT_EQ (s.garbage_duration, GST_SECOND);
  EXPECT_EQ (build_uri (s),
      "test://x?width=640&height=360&framerate=15/2&gop=10&bitrate=500&codec=h265&audio=opus"
      "&drop-after=1.5&stall-after=2&stall-duration=0.25&resize-every=3&resize-width=320"
      "&resize-height=180&garbage-after=4&garbage-duration=1");
}

TEST (TestUri, ResizeDefaultsToHalfTheSizeRoundedToEven)
{
  Settings s;
  GError *error = nullptr;
  ASSERT_TRUE (parse_uri ("test://x?width=100&height=60", s, &error));
  EXPECT_EQ (s.resized_width (), 50u);
  EXPECT_EQ (s.resized_height (), 30u & ~1u);
  ASSERT_TRUE (parse_uri ("test://x?width=52&height=36", s, &error));
  EXPECT_EQ (s.resized_width (), 26u);
  EXPECT_EQ (s.resized_height (), 18u);
}

TEST (TestUri, SecondsAreExactToTheNanosecond)
{
  Settings s;
  GError *error = nullptr;
  ASSERT_TRUE (parse_uri ("test://x?drop-after=0.000000001", s, &error));
  EXPECT_EQ (s.drop_after, 1u);
  EXPECT_EQ (format_seconds (1), "0.000000001");
  EXPECT_EQ (format_seconds (1500 * GST_MSECOND), "1.5");
  EXPECT_EQ (format_seconds (7 * GST_SECOND), "7");
}

struct Refused {
  const char *uri;
  GstURIError code;
  const char *named;  // a part of the message
};

class TestUriRefused : public ::testing::TestWithParam<Refused> {};

TEST_P (TestUriRefused, NamesWhatIsWrongAndLeavesTheSettings)
{
  Settings s;
  s.gop = 7;
  GError *error = nullptr;
  EXPECT_FALSE (parse_uri (GetParam ().uri, s, &error));
  camrelay::GErrorPtr owner{error};
  ASSERT_NE (error, nullptr);
  EXPECT_TRUE (g_error_matches (error, GST_URI_ERROR, GetParam ().code)) << error->message;
  EXPECT_NE (std::string (error->message).find (GetParam ().named), std::string::npos)
      << error->message;
  EXPECT_EQ (s.gop, 7u) << "a refused URI changed the settings";
}

INSTANTIATE_TEST_SUITE_P (Uris, TestUriRefused,
    ::testing::Values (Refused{"test://x?gop=0", GST_URI_ERROR_BAD_URI, "'gop'"},
        Refused{"test://x?width=17", GST_URI_ERROR_BAD_URI, "'width'"},
        Refused{"test://x?framerate=500", GST_URI_ERROR_BAD_URI, "'framerate'"},
        Refused{"test://x?codec=vp8", GST_URI_ERROR_BAD_URI, "h264, h265 or jpeg"},
        Refused{"test://x?stall-after=-1", GST_URI_ERROR_BAD_URI, "'stall-after'"},
        Refused{"test://x?colour=red", GST_URI_ERROR_BAD_URI, "unknown key 'colour'"},
        Refused{"test://x?gop=2&gop=3", GST_URI_ERROR_BAD_URI, "'gop' given twice"},
        Refused{"test://x?gop", GST_URI_ERROR_BAD_URI, "'gop' has no value"},
        Refused{"rtsp://x", GST_URI_ERROR_UNSUPPORTED_PROTOCOL, "not test"},
        Refused{"test://user@x", GST_URI_ERROR_BAD_URI, "no user"}));

}  // namespace
