// camerasrc against healthy cameras: what comes out, the start sequence, the
// stats, each input (rtsp://, http:// MJPEG, file:// looped, test://),
// switching location in PLAYING, and credentials kept out of every report.
#include <glib/gstdio.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include "camerasrc_test_util.h"
#include "common/uri_schemes.h"

using namespace camtest;

TEST (CameraSrc, IsRegisteredWithItsUriSchemes)
{
  camrelay::ElementPtr element{gst_element_factory_make ("camerasrc", nullptr)};
  ASSERT_TRUE (element) << "camerasrc is not registered";
  ASSERT_TRUE (GST_IS_URI_HANDLER (element.get ()));
  EXPECT_EQ (gst_uri_handler_get_uri_type (GST_URI_HANDLER (element.get ())), GST_URI_SRC);
  const gchar *const *protocols = gst_uri_handler_get_protocols (GST_URI_HANDLER (element.get ()));
  std::set<std::string> schemes;
  for (int i = 0; protocols && protocols[i]; i++)
    schemes.insert (protocols[i]);
  for (const camrelay::UriSchemeRow &scheme : camrelay::CAMERA_URI_SCHEMES)
    EXPECT_TRUE (schemes.count (scheme.name)) << scheme.name;
  EXPECT_EQ (state_property (element.get ()), "stopped");
  auto stats = get_stats (element.get ());
  ASSERT_TRUE (stats);
  for (const char *field : camrelay::camerasrc_names::STATS_U64)
    stat_u64 (stats.get (), field);
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_LAST_FRAME_AGE), G_MAXUINT64);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_WIDTH), 0);
  EXPECT_EQ (stat_string (stats.get (), names::STAT_LAST_ERROR), "");
  guint attempt = 99;
  EXPECT_TRUE (gst_structure_get_uint (stats.get (), "attempt", &attempt));
  EXPECT_TRUE (gst_structure_has_field_typed (stats.get (), "framerate", GST_TYPE_FRACTION));
}

TEST (CameraSrc, RtspStartsAndStreamsParsedH264)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri ()));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (46, 10s)) << p.describe_messages ();
  expect_clean_stream (p);

  auto states = p.states ();
  ASSERT_GE (states.size (), 2u);
  EXPECT_EQ (states[0], "connecting");
  EXPECT_EQ (states[1], "streaming");
  EXPECT_EQ (states.size (), 2u) << "state changes on a healthy camera";
  auto messages = p.state_messages ();
  EXPECT_EQ (messages[0].location, camera.uri ());
  EXPECT_EQ (messages[0].source, "cam");
  EXPECT_EQ (state_property (p.by_name ("cam")), "streaming");

  auto frames = p.frames ();
  EXPECT_EQ (frames[0].media_type, "video/x-h264");
  EXPECT_EQ (frames[0].width, 640);
  EXPECT_EQ (frames[0].height, 360);
  // Live: 45 frames at 30 fps, not a burst.
  double span = seconds_between (frames[0].arrival, frames[45].arrival);
  EXPECT_GT (span, 1.1);
  EXPECT_LT (span, 2.2);
  EXPECT_NEAR (double (frames[45].pts - frames[0].pts) / GST_SECOND, 1.5, 0.2);
  int keyframes = 0;
  for (auto &f : frames)
    keyframes += f.keyframe;
  EXPECT_GE (keyframes, 2);

  auto stats = get_stats (p.by_name ("cam"));
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_CONNECTS), 1u);
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_RECONNECTS), 0u);
  EXPECT_GE (stat_u64 (stats.get (), names::STAT_FRAMES), 46u);
  EXPECT_GE (stat_u64 (stats.get (), names::STAT_KEYFRAMES), 2u);
  EXPECT_GT (stat_u64 (stats.get (), names::STAT_BYTES), 0u);
  EXPECT_LT (stat_u64 (stats.get (), names::STAT_LAST_FRAME_AGE), GST_SECOND);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_WIDTH), 640);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_HEIGHT), 360);
  EXPECT_EQ (stat_string (stats.get (), names::STAT_CODEC), "h264");
  EXPECT_EQ (stat_string (stats.get (), names::STAT_LAST_ERROR), "");
  EXPECT_EQ (stat_u64 (stats.get (), names::STAT_FALLBACK_FRAMES), 0u);
  EXPECT_GT (stat_u64 (stats.get (), names::STAT_STREAMING_TIME), GST_SECOND / 2);
  gint num = 0, den = 0;
  EXPECT_TRUE (gst_structure_get_fraction (stats.get (), "framerate", &num, &den));
  if (den) {
    EXPECT_NEAR (double (num) / den, 30.0, 0.5) << stats_string (p.by_name ("cam"));
  }

  EXPECT_LT (p.stop (), 1.0);
}

// H.265 (rtph265depay ! h265parse) and RTP JPEG (rtpjpegdepay ! jpegparse)
// inside: parsed frames at the camera's size, a keyframe first.
class CameraSrcRtspCodec
    : public ::testing::TestWithParam<std::tuple<const char *, const char *>> {};

TEST_P (CameraSrcRtspCodec, StreamsParsedFrames)
{
  const auto [codec, media_type] = GetParam ();
  RtspCameraOptions options;
  options.codec = codec;
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri ()));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (31, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
  EXPECT_EQ (p.states (), (std::vector<std::string>{"connecting", "streaming"}));
  auto frames = p.frames ();
  int keyframes = 0;
  for (const auto &f : frames) {
    EXPECT_EQ (f.media_type, media_type);
    EXPECT_EQ (f.width, 640);
    EXPECT_EQ (f.height, 360);
    keyframes += f.keyframe;
  }
  // GOP 15 (H.265); every JPEG frame is a keyframe.
  EXPECT_GE (keyframes, std::string (codec) == "jpeg" ? 31 : 2);
  auto stats = get_stats (p.by_name ("cam"));
  EXPECT_EQ (stat_string (stats.get (), names::STAT_CODEC), codec);
  EXPECT_EQ (stat_int (stats.get (), names::STAT_WIDTH), 640);
}

INSTANTIATE_TEST_SUITE_P (Codecs, CameraSrcRtspCodec,
    ::testing::Values (std::make_tuple ("h265", "video/x-h265"),
        std::make_tuple ("jpeg", "image/jpeg")),
    [] (const ::testing::TestParamInfo<std::tuple<const char *, const char *>> &info) {
      return std::string (std::get<0> (info.param));
    });

TEST (CameraSrc, RtspOverUdp)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri (), "protocols=udp"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (20, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
}

TEST (CameraSrc, HttpMjpegStreams)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri ()));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (16, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
  auto frames = p.frames ();
  EXPECT_EQ (frames[0].media_type, "image/jpeg");
  EXPECT_EQ (frames[0].width, 320);
  EXPECT_EQ (frames[0].height, 240);
  for (auto &f : frames)
    EXPECT_TRUE (f.keyframe) << "every JPEG frame is a keyframe";
  double span = seconds_between (frames[0].arrival, frames[15].arrival);
  EXPECT_GT (span, 0.7);
  auto stats = get_stats (p.by_name ("cam"));
  EXPECT_EQ (stat_string (stats.get (), names::STAT_CODEC), "jpeg");
  EXPECT_EQ (p.states ().size (), 2u);
}

TEST (CameraSrc, FileIsPlayedLiveAndLooped)
{
  const std::string path = recording_file (320, 180, 30, 1, "mp4");
  ASSERT_FALSE (path.empty ());
  camrelay::GCharPtr uri{gst_filename_to_uri (path.c_str (), nullptr)};
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, uri.get ()));
  ASSERT_TRUE (p.play ());
  // 30 frames in the file: 75 frames is two loops and a half.
  ASSERT_TRUE (p.wait_frames (76, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
  auto frames = p.frames ();
  double span = seconds_between (frames[0].arrival, frames[75].arrival);
  EXPECT_GT (span, 2.0) << "the file is played in real time";
  EXPECT_NEAR (double (frames[75].pts - frames[0].pts) / GST_SECOND, 2.5, 0.3);
  EXPECT_EQ (frames[0].width, 320);
  // A loop restarts on a keyframe: keyframes at least every 15 frames.
  size_t last_keyframe = 0;
  for (size_t i = 0; i < frames.size (); i++) {
    if (frames[i].keyframe)
      last_keyframe = i;
    EXPECT_LE (i - last_keyframe, 15u) << "frame " << i;
  }
  EXPECT_EQ (p.states ().size (), 2u) << "a loop is not a reconnect";
}

// Cameras have self-signed certificates.  camerasrc validates them (the
// default of rtspsrc and souphttpsrc) and has no property to trust one, so
// these tests make its inner TLS clients trust the camera's certificate
// (trust_inside ()) to reach the TLS path; see the disabled test below.
TEST (CameraSrc, RtspsStreamsFromACameraWhoseCertificateIsTrusted)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  RtspCameraOptions options;
  options.tls_pem = identity->pem;
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri ()));
  trust_inside (p, identity->certificate_file);
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (31, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
  // A TLS handshake on a loaded machine (or under AddressSanitizer) may miss
  // its first attempt: what counts is that the TLS session streams.
  const auto states = p.states ();
  ASSERT_GE (states.size (), 2u);
  EXPECT_EQ (states.front (), "connecting");
  EXPECT_EQ (states.back (), "streaming");
  EXPECT_EQ (p.state_messages ()[0].location, camera.uri ());
  EXPECT_EQ (p.frames ()[0].media_type, "video/x-h264");
}

TEST (CameraSrc, HttpsMjpegStreamsFromACameraWhoseCertificateIsTrusted)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  TcpProxy https (camera.port (), identity->pem);
  ASSERT_TRUE (https.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p,
      "https://127.0.0.1:" + std::to_string (https.port ()) + "/video.mjpg"));
  trust_inside (p, identity->certificate_file);
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (16, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
  EXPECT_EQ (p.frames ()[0].media_type, "image/jpeg");
  EXPECT_EQ (p.frames ()[0].width, 320);
  EXPECT_EQ (p.states ().back (), "streaming");  // after one attempt or more, as above
}

// An RTSPS and an HTTPS (MJPEG behind a TLS proxy) camera with the test's
// self-signed certificate, which camerasrc does not trust.
struct UntrustedCameras {
  explicit UntrustedCameras (const TlsIdentity &identity)
      : rtsps (rtsps_options (identity)), https (0, identity.pem)
  {
  }
  bool start ()
  {
    if (!rtsps.start () || !mjpeg.start ())
      return false;
    https.set_target (mjpeg.port ());
    return https.start ();
  }
  std::vector<std::string> uris () const
  {
    return {rtsps.uri (), "https://127.0.0.1:" + std::to_string (https.port ()) + "/video.mjpg"};
  }

  FakeRtspCamera rtsps;
  FakeMjpegCamera mjpeg;
  TcpProxy https;

 private:
  static RtspCameraOptions rtsps_options (const TlsIdentity &identity)
  {
    RtspCameraOptions options;
    options.tls_pem = identity.pem;
    return options;
  }
};

// A certificate the element does not trust is a camera fault like any
// other: retried, never an ERROR.
TEST (CameraSrc, UntrustedCertificateIsRetriedNotAnError)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  UntrustedCameras cameras (*identity);
  ASSERT_TRUE (cameras.start ());
  for (const std::string &uri : cameras.uris ()) {
    SCOPED_TRACE (uri);
    TestPipeline p;
    ASSERT_TRUE (launch_camera (p, uri));
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_state ("reconnecting", 10s, 0, 2)) << p.describe_messages ();
    std::fprintf (stderr, "%s: reason '%s'\n", uri.c_str (),
        p.state_messages ()[1].reason.c_str ());
    EXPECT_EQ (p.frame_count (), 0u);
    expect_clean_stream (p);
  }
}

// DISABLED: the reason does not say what is wrong.  rtspsrc reports an
// untrusted certificate as 'Failed to connect. (Generic error)' (as it does
// a refused connection), and for https:// the first error camerasrc keeps is
// basesrc's 'Internal data stream error ... (-5)', not souphttpsrc's
// 'Unacceptable TLS certificate'.  Enable once the reasons name it.
TEST (CameraSrc, DISABLED_UntrustedCertificateIsNamedInTheReason)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  UntrustedCameras cameras (*identity);
  ASSERT_TRUE (cameras.start ());
  for (const std::string &uri : cameras.uris ()) {
    SCOPED_TRACE (uri);
    TestPipeline p;
    ASSERT_TRUE (launch_camera (p, uri));
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_state ("reconnecting", 10s)) << p.describe_messages ();
    const std::string reason = p.state_messages ()[1].reason;
    EXPECT_TRUE (contains_nocase (reason, "certificate") || contains_nocase (reason, "TLS"))
        << reason;
  }
}

// DISABLED: camerasrc cannot be told to accept a camera's self-signed
// certificate (nearly every camera's): it has no tls-validation-flags (nor
// tls-database) of its own and does not pass one to rtspsrc/souphttpsrc,
// so rtsps:// and https:// work only with a certificate the system trusts.
// This test uses the name and type of rtspsrc's property; enable it once
// camerasrc has such a property.
TEST (CameraSrc, DISABLED_RtspsAcceptsASelfSignedCertificateWhenTold)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  RtspCameraOptions options;
  options.tls_pem = identity->pem;
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri ()));
  ASSERT_NE (g_object_class_find_property (G_OBJECT_GET_CLASS (p.by_name ("cam")),
                 "tls-validation-flags"),
      nullptr) << "camerasrc has no tls-validation-flags property";
  gst_util_set_object_arg (G_OBJECT (p.by_name ("cam")), "tls-validation-flags", "0");
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (31, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
}

TEST (CameraSrc, TestUriStreams)
{
  ASSERT_TRUE (has_factory ("testcamerasrc"));
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=320&height=240&framerate=30&gop=10"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (31, 10s)) << p.describe_messages ();
  expect_clean_stream (p);
  auto frames = p.frames ();
  EXPECT_EQ (frames[0].media_type, "video/x-h264");
  EXPECT_EQ (frames[0].width, 320);
  EXPECT_EQ (frames[0].height, 240);
  EXPECT_TRUE (frames[10].keyframe);
  EXPECT_GT (seconds_between (frames[0].arrival, frames[30].arrival), 0.7);
}

TEST (CameraSrc, LocationChangeInPlayingSwitchesCamera)
{
  FakeRtspCamera first;
  ASSERT_TRUE (first.start ());
  RtspCameraOptions options;
  options.width = 320;
  options.height = 180;
  FakeRtspCamera second (options);
  ASSERT_TRUE (second.start ());

  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, first.uri ()));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (10, 10s)) << p.describe_messages ();
  const size_t from = next_state_index (p);
  auto switched = SteadyClock::now ();
  g_object_set (p.by_name ("cam"), "location", second.uri ().c_str (), nullptr);
  long index = p.wait_frame_after (switched, 5s);
  ASSERT_GE (index, 0) << p.describe_messages ();
  // Frames of the first camera may still be on their way: wait for the new size.
  ASSERT_TRUE (p.wait_frames (static_cast<size_t> (index) + 30, 5s));
  auto frames = p.frames ();
  long first_small = -1;
  for (size_t i = 0; i < frames.size (); i++)
    if (frames[i].width == 320) {
      first_small = static_cast<long> (i);
      break;
    }
  ASSERT_GE (first_small, 0) << "no frame from the second camera";
  EXPECT_TRUE (frames[first_small].keyframe);
  EXPECT_TRUE (frames[first_small].discont);
  EXPECT_GT (frames[first_small].caps_generation, frames[0].caps_generation);
  EXPECT_LT (seconds_between (switched, frames[first_small].arrival), 3.0);
  for (size_t i = first_small; i < frames.size (); i++)
    EXPECT_EQ (frames[i].width, 320) << "first camera's frame after the switch, frame " << i;
  expect_clean_stream (p);
  EXPECT_TRUE (p.wait_state ("streaming", 5s, from));
  auto messages = p.state_messages ();
  EXPECT_EQ (messages.back ().location, second.uri ());
  // The first camera is let go.
  for (int i = 0; i < 30 && first.clients () > 0; i++)
    p.wait_until ([] { return false; }, 100ms);
  EXPECT_EQ (first.clients (), 0u);
  EXPECT_EQ (second.clients (), 1u);
}

// `bitrate` (bit/s over the last 5 s of video) against the camera's
// encoder target and against what came out of the element meanwhile.
// (x264 undershoots higher targets on this simple picture: at 320x240 it
// holds 200 kbit/s.)
TEST (CameraSrc, BitrateStatFollowsTheCamera)
{
  ASSERT_TRUE (has_factory ("testcamerasrc"));
  constexpr double target = 200000;
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, "test://cam?width=320&height=240&gop=15&bitrate=200"));
  ASSERT_TRUE (p.play ());
  // Four seconds of video, then the stats and the frames of the last three.
  ASSERT_TRUE (p.wait_frames (121, 10s)) << p.describe_messages ();
  auto stats = get_stats (p.by_name ("cam"));
  auto frames = p.frames ();
  const double bitrate = double (stat_u64 (stats.get (), names::STAT_BITRATE));
  const auto since = frames.back ().arrival - 3s;
  double bytes = 0;
  SteadyClock::time_point first = frames.back ().arrival;
  for (const auto &f : frames) {
    if (f.arrival < since || &f == &frames.back ())
      continue;
    bytes += double (f.size);
    first = std::min (first, f.arrival);
  }
  const double delivered = bytes * 8 / seconds_between (first, frames.back ().arrival);
  std::fprintf (stderr, "bitrate stat %.0f bit/s, delivered %.0f bit/s, target %.0f bit/s\n",
      bitrate, delivered, target);
  EXPECT_NEAR (bitrate, target, 0.25 * target) << stats_string (p.by_name ("cam"));
  EXPECT_NEAR (bitrate, delivered, 0.15 * delivered);
  expect_clean_stream (p);
}

// The user name is as private as the password: camerasrc reports the
// location without user information, and its messages and stats never
// carry the name, whether from the URI or from user-id.
TEST (CameraSrc, UserNameNeverAppearsInMessagesOrStats)
{
  const std::string user = "camuser7";
  FakeRtspCamera camera;
  camera.require_auth (user, "Secr3tPw");
  ASSERT_TRUE (camera.start ());
  FakeMjpegCamera mjpeg;
  ASSERT_TRUE (mjpeg.start ());
  std::string stats_text;
  std::vector<MessageRecord> messages;
  auto collect = [&] (TestPipeline &p) {
    stats_text += stats_string (p.by_name ("cam"));
    for (const auto &m : p.messages ())
      messages.push_back (m);
  };
  {
    // Wrong password in the URI: a 401 per attempt.
    TestPipeline p;
    ASSERT_TRUE (launch_camera (p, camera.uri_with_credentials (user, "Wr0ngPw")));
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_state ("reconnecting", 10s, 0, 2)) << p.describe_messages ();
    collect (p);
    // Then the right one in user-id and user-pw.
    g_object_set (p.by_name ("cam"), "location", camera.uri ().c_str (), "user-id",
        user.c_str (), "user-pw", "Secr3tPw", nullptr);
    ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
    collect (p);
  }
  for (const std::string &uri :
      {"rtsp://" + user + ":Secr3tPw@camera.invalid/cam",
          "http://" + user + ":Secr3tPw@127.0.0.1:" + std::to_string (mjpeg.port ()) + "/none",
          "http://127.0.0.1:" + std::to_string (closed_port ()) + "/video.mjpg"}) {
    TestPipeline p;
    ASSERT_TRUE (launch_camera (p, uri));
    g_object_set (p.by_name ("cam"), "user-id", user.c_str (), nullptr);
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_state ("reconnecting", 10s, 0, 2)) << p.describe_messages ();
    collect (p);
  }
  EXPECT_EQ (stats_text.find (user), std::string::npos) << stats_text;
  for (const auto &m : messages) {
    EXPECT_EQ (m.text.find (user), std::string::npos) << m.text;
    EXPECT_EQ (m.location.find (user), std::string::npos) << m.location;
    EXPECT_EQ (m.reason.find (user), std::string::npos) << m.reason;
  }
}

// Users write passwords with '@' in URIs without encoding it
// ("rtsp://admin:p@ss@host/"): the password is everything up to the last
// '@' of the authority, and none of it shows in messages or stats.
TEST (CameraSrc, UnencodedAtInThePasswordOfTheUri)
{
  FakeRtspCamera camera;
  camera.require_auth ("admin", "p@ss@word");
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (launch_camera (p, camera.uri_with_credentials ("admin", "p@ss@word")));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  const std::string stats_text = stats_string (p.by_name ("cam"));
  EXPECT_EQ (stats_text.find ("ss@word"), std::string::npos) << stats_text;
  EXPECT_EQ (stats_text.find ("ss%40word"), std::string::npos) << stats_text;
  for (const auto &m : p.messages ()) {
    EXPECT_EQ (m.text.find ("ss@word"), std::string::npos) << m.text;
    EXPECT_EQ (m.location.find ("ss"), std::string::npos) << m.location;
  }
  EXPECT_LT (p.stop (), 1.0);
}

TEST (CameraSrc, CredentialsNeverAppearInMessagesOrStats)
{
  FakeRtspCamera camera;
  camera.require_auth ("viewer", "Secr3tPw");
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  // Wrong password in the URI first: the 401 is reported, the password is not.
  ASSERT_TRUE (launch_camera (p, camera.uri_with_credentials ("viewer", "Wr0ngPw")));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_state ("reconnecting", 10s)) << p.describe_messages ();
  std::string stats_text = stats_string (p.by_name ("cam"));
  // Then the right one through user-id/user-pw.
  g_object_set (p.by_name ("cam"), "user-id", "viewer", "user-pw", "Secr3tPw", nullptr);
  ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  stats_text += stats_string (p.by_name ("cam"));
  // And the right one in the URI.
  g_object_set (p.by_name ("cam"), "user-id", nullptr, "user-pw", nullptr, nullptr);
  g_object_set (p.by_name ("cam"), "location",
      camera.uri_with_credentials ("viewer", "Secr3tPw").c_str (), nullptr);
  size_t count = p.frame_count ();
  EXPECT_TRUE (p.wait_frames (count + 30, 10s));
  stats_text += stats_string (p.by_name ("cam"));

  for (const auto &m : p.messages ()) {
    EXPECT_EQ (m.text.find ("Secr3tPw"), std::string::npos) << m.text;
    EXPECT_EQ (m.text.find ("Wr0ngPw"), std::string::npos) << m.text;
    EXPECT_EQ (m.location.find ("Pw"), std::string::npos) << m.location;
    EXPECT_EQ (m.location.find ("viewer:"), std::string::npos) << m.location;
  }
  EXPECT_EQ (stats_text.find ("Secr3tPw"), std::string::npos) << stats_text;
  EXPECT_EQ (stats_text.find ("Wr0ngPw"), std::string::npos) << stats_text;
  camrelay::GCharPtr location;
  {
    gchar *value = nullptr;
    g_object_get (p.by_name ("cam"), "location", &value, nullptr);
    location.reset (value);
  }
  // The location property gives back what the application set.
  EXPECT_TRUE (location);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
}

namespace {

// gst-presets/GstCameraSrc.prs of the source tree (GST_PRESET_PATH, set by
// meson), read as a key file: what each preset must set.
camrelay::UniqueRef<GKeyFile, g_key_file_unref>
presets_file ()
{
  const gchar *dir = g_getenv ("GST_PRESET_PATH");
  if (!dir) {
    ADD_FAILURE () << "GST_PRESET_PATH is not set";
    return nullptr;
  }
  camrelay::UniqueRef<GKeyFile, g_key_file_unref> file{g_key_file_new ()};
  GError *error = nullptr;
  const std::string path = std::string (dir) + "/GstCameraSrc.prs";
  if (!g_key_file_load_from_file (file.get (), path.c_str (), G_KEY_FILE_NONE, &error)) {
    ADD_FAILURE () << path << ": " << error->message;
    g_error_free (error);
    return nullptr;
  }
  return file;
}

std::string
property_string (GstElement *element, const char *name)
{
  GParamSpec *pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (element), name);
  if (!pspec)
    return "(no such property)";
  GValue value = G_VALUE_INIT;
  g_value_init (&value, pspec->value_type);
  g_object_get_property (G_OBJECT (element), name, &value);
  camrelay::GCharPtr text{gst_value_serialize (&value)};
  g_value_unset (&value);
  return text ? text.get () : "(null)";
}

// A string property as is; "(null)" for NULL.
std::string
string_property (GstElement *element, const char *name)
{
  gchar *value = nullptr;
  g_object_get (element, name, &value, nullptr);
  std::string text = value ? value : "(null)";
  g_free (value);
  return text;
}

}  // namespace

// Every preset of the file is offered and, loaded, sets each property it
// lists (all set away from those values first), and nothing else: the
// camera and its credentials stay.
TEST (CameraSrcPresets, EveryPresetOfTheFileLoads)
{
  auto file = presets_file ();
  ASSERT_TRUE (file);
  camrelay::ElementPtr camerasrc{gst_element_factory_make ("camerasrc", nullptr)};
  ASSERT_TRUE (camerasrc);
  GstPreset *preset = GST_PRESET (camerasrc.get ());
  gchar **offered = gst_preset_get_preset_names (preset);
  std::set<std::string> names;
  for (int i = 0; offered && offered[i]; i++)
    names.insert (offered[i]);
  g_strfreev (offered);

  gchar **groups = g_key_file_get_groups (file.get (), nullptr);
  int presets = 0;
  for (int g = 0; groups[g]; g++) {
    const std::string name = groups[g];
    if (name == "_presets_")
      continue;
    SCOPED_TRACE ("preset " + name);
    presets++;
    EXPECT_TRUE (names.count (name)) << "not offered by gst_preset_get_preset_names ()";
    // Away from every value a preset of the file sets.
    g_object_set (camerasrc.get (), "location", "rtsp://admin:pw@192.0.2.10/stream1", "user-id",
        "admin", "user-pw", "pw", "latency", 4321u, "retry-delay", guint64 (7 * GST_MSECOND),
        "retry-delay-max", guint64 (77 * GST_MSECOND), "timeout", guint64 (0),
        "connect-timeout", guint64 (3 * GST_SECOND), nullptr);
    gst_util_set_object_arg (G_OBJECT (camerasrc.get ()), "protocols", "udp");
    gst_util_set_object_arg (G_OBJECT (camerasrc.get ()), "fallback", "slate");
    ASSERT_TRUE (gst_preset_load_preset (preset, name.c_str ()));
    gchar **keys = g_key_file_get_keys (file.get (), name.c_str (), nullptr, nullptr);
    int checked = 0;
    for (int k = 0; keys[k]; k++) {
      const std::string key = keys[k];
      if (key.rfind ("_meta/", 0) == 0)
        continue;
      gchar *text = g_key_file_get_value (file.get (), name.c_str (), key.c_str (), nullptr);
      GParamSpec *pspec = g_object_class_find_property (
          G_OBJECT_GET_CLASS (camerasrc.get ()), key.c_str ());
      EXPECT_NE (pspec, nullptr) << key;
      if (pspec) {
        GValue expected = G_VALUE_INIT;
        g_value_init (&expected, pspec->value_type);
        EXPECT_TRUE (gst_value_deserialize (&expected, text)) << key << "=" << text;
        camrelay::GCharPtr wanted{gst_value_serialize (&expected)};
        EXPECT_EQ (property_string (camerasrc.get (), key.c_str ()), wanted.get ()) << key;
        g_value_unset (&expected);
        checked++;
      }
      g_free (text);
    }
    g_strfreev (keys);
    EXPECT_GE (checked, 6);
    EXPECT_EQ (string_property (camerasrc.get (), "location"),
        "rtsp://admin:pw@192.0.2.10/stream1");
    EXPECT_EQ (string_property (camerasrc.get (), "user-id"), "admin");
    EXPECT_EQ (string_property (camerasrc.get (), "user-pw"), "pw");
  }
  g_strfreev (groups);
  EXPECT_GE (presets, 3);
}

// A saved preset holds the tuning and never the camera's address or
// credentials, and it loads back.
TEST (CameraSrcPresets, SavingAPresetNeverWritesTheCameraOrItsCredentials)
{
  const gchar *data_home = g_getenv ("XDG_DATA_HOME");
  ASSERT_NE (data_home, nullptr)
      << "meson points XDG_DATA_HOME into the build tree, so that this test does not save "
         "presets into the user's own directory";
  ASSERT_STREQ (g_get_user_data_dir (), data_home);
  const std::string path = std::string (data_home) + "/gstreamer-1.0/presets/GstCameraSrc.prs";
  g_unlink (path.c_str ());

  camrelay::ElementPtr camerasrc{gst_element_factory_make ("camerasrc", nullptr)};
  ASSERT_TRUE (camerasrc);
  g_object_set (camerasrc.get (), "location", "rtsp://camadmin:Secr3tPw@192.0.2.10/stream1",
      "user-id", "camadmin", "user-pw", "Secr3tPw", "latency", 777u, "retry-delay",
      guint64 (3 * GST_SECOND), nullptr);
  gst_util_set_object_arg (G_OBJECT (camerasrc.get ()), "fallback", "none");
  ASSERT_TRUE (gst_preset_save_preset (GST_PRESET (camerasrc.get ()), "camrelay-test"));
  gchar *contents = nullptr;
  ASSERT_TRUE (g_file_get_contents (path.c_str (), &contents, nullptr, nullptr)) << path;
  const std::string text = contents;
  g_free (contents);
  const size_t start = text.find ("[camrelay-test]");
  ASSERT_NE (start, std::string::npos) << text;
  const std::string section = text.substr (start, text.find ("\n[", start) - start);
  EXPECT_NE (section.find ("latency=777"), std::string::npos) << section;
  EXPECT_NE (section.find ("retry-delay=3000000000"), std::string::npos) << section;
  EXPECT_NE (section.find ("fallback=none"), std::string::npos) << section;
  for (const char *never : {"location", "user-id", "user-pw"})
    EXPECT_EQ (section.find (never), std::string::npos) << never << " saved:\n" << section;
  for (const char *secret : {"Secr3tPw", "camadmin", "192.0.2.10"})
    EXPECT_EQ (text.find (secret), std::string::npos) << secret << " saved:\n" << text;

  camrelay::ElementPtr fresh{gst_element_factory_make ("camerasrc", nullptr)};
  ASSERT_TRUE (gst_preset_load_preset (GST_PRESET (fresh.get ()), "camrelay-test"));
  EXPECT_EQ (property_string (fresh.get (), "latency"), "777");
  EXPECT_EQ (property_string (fresh.get (), "fallback"), "none");
  EXPECT_EQ (string_property (fresh.get (), "location"), "(null)");
  EXPECT_TRUE (gst_preset_delete_preset (GST_PRESET (fresh.get ()), "camrelay-test"));
  g_unlink (path.c_str ());
}

// A missing location is a configuration error, not a camera fault: the
// element refuses to start and says what is missing.
TEST (CameraSrc, NoLocationIsAClearErrorAtStart)
{
  camrelay::ElementPtr camerasrc{gst_element_factory_make ("camerasrc", nullptr)};
  ASSERT_NE (camerasrc, nullptr);
  gst_object_ref_sink (camerasrc.get ());
  camrelay::BusPtr bus{gst_bus_new ()};
  gst_element_set_bus (camerasrc.get (), bus.get ());
  EXPECT_EQ (gst_element_set_state (camerasrc.get (), GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  camrelay::MessagePtr error{gst_bus_pop_filtered (bus.get (), GST_MESSAGE_ERROR)};
  ASSERT_NE (error, nullptr);
  GError *gerror = nullptr;
  gst_message_parse_error (error.get (), &gerror, nullptr);
  EXPECT_NE (std::string (gerror->message).find ("location"), std::string::npos) << gerror->message;
  g_error_free (gerror);
  gst_element_set_state (camerasrc.get (), GST_STATE_NULL);
  gst_element_set_bus (camerasrc.get (), nullptr);
}
