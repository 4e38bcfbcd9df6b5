// The fake cameras proven with GStreamer's own clients (rtspsrc,
// souphttpsrc), independently of camerasrc: if these fail, a camerasrc test
// failure says nothing about camerasrc.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>


#include "common/gstref.h"
#include "fake_camera.h"
#include "test_pipeline.h"

using namespace camtest;

namespace {

std::string
rtsp_client (const std::string &uri, const std::string &extra = "")
{
  return "rtspsrc name=src location=\"" + uri + "\" protocols=tcp latency=100 " + extra +
         " ! rtph264depay ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au"
         " ! appsink name=sink sync=false";
}

// rtspsrc, then `chain` (a depayloader and parser) into the appsink, and
// `other` (a depayloader that takes only another stream of the camera) to a
// fakesink.
std::string
rtsp_client_of (const std::string &uri, const std::string &chain, const std::string &other = "")
{
  return "rtspsrc name=src location=\"" + uri + "\" protocols=tcp latency=100 src. ! " + chain +
         " ! appsink name=sink sync=false" +
         (other.empty () ? "" : " src. ! " + other + " ! fakesink sync=false");
}

// A TLS database that trusts `certificate_file` alone.
camrelay::GObjectPtr<GTlsDatabase>
trusting (const std::string &certificate_file)
{
  GError *error = nullptr;
  GTlsDatabase *database = g_tls_file_database_new (certificate_file.c_str (), &error);
  if (!database) {
    ADD_FAILURE () << error->message;
    g_error_free (error);
  }
  return camrelay::GObjectPtr<GTlsDatabase> (database);
}

std::string
mjpeg_client (const std::string &uri)
{
  return "souphttpsrc location=\"" + uri + "\" is-live=true timeout=5"
         " ! multipartdemux ! image/jpeg ! jpegparse ! appsink name=sink sync=false";
}

// Objects of type `type_name` alive now, by the leaks tracer; -1 without it.
int
live_objects (const char *type_name)
{
  GList *tracers = gst_tracing_get_active_tracers ();
  GstTracer *leaks = nullptr;
  for (GList *l = tracers; l; l = l->next)
    if (!leaks && g_str_equal (G_OBJECT_TYPE_NAME (l->data), "GstLeaksTracer"))
      leaks = GST_TRACER (gst_object_ref (l->data));
  g_list_free_full (tracers, gst_object_unref);
  if (!leaks)
    return -1;
  GstStructure *info = nullptr;
  g_signal_emit_by_name (leaks, "get-live-objects", &info);
  gst_object_unref (leaks);
  if (!info)
    return -1;
  int count = 0;
  const GValue *list = gst_structure_get_value (info, "live-objects-list");
  for (guint i = 0; list && i < gst_value_list_get_size (list); i++) {
    const GstStructure *entry = gst_value_get_structure (gst_value_list_get_value (list, i));
    const GValue *object = entry ? gst_structure_get_value (entry, "object") : nullptr;
    if (object && g_str_equal (g_type_name (G_VALUE_TYPE (object)), type_name))
      count++;
  }
  gst_structure_free (info);
  return count;
}

int
count_dir (const char *path)
{
  int count = 0;
  if (DIR *dir = opendir (path)) {
    while (readdir (dir))
      count++;
    closedir (dir);
  }
  return count;
}

}  // namespace

TEST (FakeCamera, ClipsAreWholeGopsStartingOnAKeyframe)
{
  ClipPtr clip = h264_clip (320, 180, 30, 15, 2);
  ASSERT_TRUE (clip);
  ASSERT_EQ (clip->frames.size (), 30u);
  for (size_t i = 0; i < clip->frames.size (); i++)
    EXPECT_EQ (clip->frames[i].keyframe, i % 15 == 0) << "frame " << i;
  EXPECT_NE (clip->caps.find ("video/x-h264"), std::string::npos) << clip->caps;
  EXPECT_EQ (h264_clip (320, 180, 30, 15, 2), clip) << "clips are encoded once";

  ClipPtr jpeg = jpeg_clip (160, 120, 15, 5);
  ASSERT_TRUE (jpeg);
  EXPECT_EQ (jpeg->frames.size (), 5u);
}

TEST (FakeCamera, RecordingFilePlaysToEos)
{
  std::string path = recording_file (320, 180, 30, 2, "mp4");
  ASSERT_FALSE (path.empty ());
  TestPipeline p;
  ASSERT_TRUE (p.launch ("filesrc location=\"" + path +
                         "\" ! qtdemux ! h264parse ! appsink name=sink sync=false"));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_error_or_eos (10s));
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
  EXPECT_EQ (p.frame_count (), 60u);
}

TEST (FakeCamera, RtspServesLiveFramesAtTheClipRate)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  ASSERT_NE (camera.port (), 0);
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (31, 10s)) << p.describe_messages ();
  auto frames = p.frames ();
  // Live: 30 frames at 30 fps take about a second, not a burst.
  double span = seconds_between (frames[0].arrival, frames[30].arrival);
  EXPECT_GT (span, 0.7);
  EXPECT_LT (span, 1.5);
  EXPECT_EQ (frames[0].width, 640);
  EXPECT_EQ (frames[0].height, 360);
  for (size_t i = 1; i < frames.size (); i++)
    EXPECT_GT (frames[i].pts, frames[i - 1].pts) << "frame " << i;
  EXPECT_EQ (camera.clients (), 1u);
  EXPECT_EQ (camera.media_alive (), 1u);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
  p.stop ();
  camera.stop ();
  EXPECT_EQ (camera.media_alive (), 0u);
}

TEST (FakeCamera, RtspSharedMediaServesTwoClients)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline a, b;
  ASSERT_TRUE (a.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (b.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (a.play ());
  ASSERT_TRUE (b.play ());
  ASSERT_TRUE (a.wait_frames (10, 10s)) << a.describe_messages ();
  ASSERT_TRUE (b.wait_frames (10, 10s)) << b.describe_messages ();
  EXPECT_EQ (camera.media_created (), 1u);
}

TEST (FakeCamera, RtspStopClosesClientsAndRestartServesOnTheSamePort)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  const guint16 port = camera.port ();
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();

  auto before = SteadyClock::now ();
  camera.stop ();
  EXPECT_LT (seconds_between (before, SteadyClock::now ()), 2.0) << "stop is quick";
  EXPECT_FALSE (camera.running ());
  EXPECT_EQ (camera.media_alive (), 0u);
  // rtspsrc notices the closed connection (it reports it as an error or EOS).
  EXPECT_TRUE (p.wait_error_or_eos (10s)) << p.describe_messages ();
  size_t frames_at_stop = p.frame_count ();
  p.stop ();

  // Nothing listens any more.
  TestPipeline refused;
  ASSERT_TRUE (refused.launch (rtsp_client (camera.uri ())));
  refused.play ();
  EXPECT_TRUE (refused.wait_error (10s));
  refused.stop ();

  ASSERT_TRUE (camera.start ());
  EXPECT_EQ (camera.port (), port);
  TestPipeline again;
  ASSERT_TRUE (again.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (again.play ());
  ASSERT_TRUE (again.wait_frames (5, 10s)) << again.describe_messages ();
  EXPECT_TRUE (again.frames ()[0].keyframe);
  EXPECT_GE (camera.media_created (), 2u);
  (void) frames_at_stop;

  ASSERT_TRUE (camera.restart ());
  EXPECT_EQ (camera.port (), port);
  EXPECT_TRUE (again.wait_error_or_eos (10s));
}

TEST (FakeCamera, RtspStallKeepsTheConnectionAndSendsNothing)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  camera.stall ();
  // Frames already in flight (jitterbuffer latency 100 ms) may still come.
  p.wait_until ([] { return false; }, 400ms);
  size_t stalled_count = p.frame_count ();
  p.wait_until ([] { return false; }, 1000ms);
  EXPECT_EQ (p.frame_count (), stalled_count) << "frames while stalled";
  EXPECT_EQ (camera.clients (), 1u);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
  camera.resume ();
  EXPECT_TRUE (p.wait_frames (stalled_count + 10, 5s)) << p.describe_messages ();
}

TEST (FakeCamera, RtspSwitchesResolutionWithNewCaps)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  ASSERT_TRUE (camera.switch_resolution (320, 180));
  bool switched = false;
  for (int i = 0; i < 50 && !switched; i++) {
    p.wait_frames (p.frame_count () + 1, 1s);
    auto frames = p.frames ();
    switched = frames.back ().width == 320 && frames.back ().height == 180;
  }
  EXPECT_TRUE (switched);
  auto frames = p.frames ();
  for (size_t i = 1; i < frames.size (); i++) {
    if (frames[i].width != frames[i - 1].width) {
      EXPECT_TRUE (frames[i].keyframe) << "first frame of the new size is a keyframe";
      EXPECT_GT (frames[i].caps_generation, frames[i - 1].caps_generation);
    }
  }
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
}

TEST (FakeCamera, RtspBasicAuth)
{
  FakeRtspCamera camera;
  camera.require_auth ("viewer", "s3cret");
  ASSERT_TRUE (camera.start ());
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
    p.play ();
    ASSERT_TRUE (p.wait_error (10s));
    auto errors = p.messages_of (GST_MESSAGE_ERROR);
    EXPECT_NE (errors[0].text.find ("Unauthorized"), std::string::npos) << errors[0].text;
    EXPECT_EQ (p.frame_count (), 0u);
  }
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri (), "user-id=viewer user-pw=wrong")));
    p.play ();
    ASSERT_TRUE (p.wait_error (10s));
    EXPECT_EQ (p.frame_count (), 0u);
  }
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri (), "user-id=viewer user-pw=s3cret")));
    ASSERT_TRUE (p.play ());
    EXPECT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  }
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri_with_credentials ("viewer", "s3cret"))));
    ASSERT_TRUE (p.play ());
    EXPECT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  }
  camera.require_auth ("", "");
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
    ASSERT_TRUE (p.play ());
    EXPECT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  }
}

TEST (FakeCamera, RtspServesH265AndRtpJpegAndSwitchesCodecOnRestart)
{
  RtspCameraOptions options;
  options.codec = "h265";
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client_of (camera.uri (), "rtph265depay ! h265parse")));
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_frames (10, 10s)) << p.describe_messages ();
    auto frames = p.frames ();
    EXPECT_EQ (frames[0].media_type, "video/x-h265");
    EXPECT_EQ (frames[0].width, 640);
    EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
  }
  EXPECT_FALSE (camera.switch_codec ("jpeg")) << "only while stopped";
  camera.stop ();
  ASSERT_TRUE (camera.switch_codec ("jpeg"));
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client_of (camera.uri (), "rtpjpegdepay ! jpegparse")));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (10, 10s)) << p.describe_messages ();
  EXPECT_EQ (p.frames ()[0].media_type, "image/jpeg");
  EXPECT_EQ (p.frames ()[0].width, 640);
}

class FakeCameraAudio
    : public ::testing::TestWithParam<std::tuple<const char *, const char *, const char *>> {};

TEST_P (FakeCameraAudio, RtspServesAudioAlongsideVideo)
{
  const auto [audio, chain, media_type] = GetParam ();
  RtspCameraOptions options;
  options.audio = audio;
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client_of (camera.uri (), chain, "rtph264depay")));
  ASSERT_TRUE (p.play ());
  // About a second of audio (AAC frames are 64 ms, G.711 buffers 20 ms).
  ASSERT_TRUE (p.wait_frames (15, 10s)) << p.describe_messages ();
  EXPECT_EQ (p.frames ()[0].media_type, media_type);
  EXPECT_TRUE (p.messages_of (GST_MESSAGE_ERROR).empty ()) << p.describe_messages ();
}

INSTANTIATE_TEST_SUITE_P (Codecs, FakeCameraAudio,
    ::testing::Values (std::make_tuple ("aac", "rtpmp4gdepay ! aacparse", "audio/mpeg"),
        std::make_tuple ("pcma", "rtppcmadepay", "audio/x-alaw")));

TEST (FakeCamera, RtspAnswersTheStatusItIsToldThenServesAgain)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  const std::pair<const char *, GstRTSPStatusCode> answers[] = {
    {"DESCRIBE", GST_RTSP_STS_SERVICE_UNAVAILABLE},
    {"SETUP", GST_RTSP_STS_FORBIDDEN},
    {"PLAY", GST_RTSP_STS_SESSION_NOT_FOUND},
  };
  for (const auto &[method, status] : answers) {
    SCOPED_TRACE (method);
    camera.answer (method, status);
    {
      TestPipeline p;
      ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
      p.play ();
      ASSERT_TRUE (p.wait_error (10s)) << p.describe_messages ();
      const std::string text = p.messages_of (GST_MESSAGE_ERROR)[0].text;
      EXPECT_NE (text.find (std::to_string (status)), std::string::npos) << text;
      EXPECT_EQ (p.frame_count (), 0u);
    }
    camera.answer (method, GST_RTSP_STS_OK);
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
    ASSERT_TRUE (p.play ());
    EXPECT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  }
}

TEST (FakeCamera, RtspsServesOverTlsWithItsCertificate)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  RtspCameraOptions options;
  options.tls_pem = identity->pem;
  FakeRtspCamera camera (options);
  ASSERT_TRUE (camera.start ());
  EXPECT_EQ (camera.uri ().rfind ("rtsps://127.0.0.1:", 0), 0u) << camera.uri ();
  {
    // Self-signed: refused by a client that validates.
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
    p.play ();
    EXPECT_TRUE (p.wait_error (10s)) << p.describe_messages ();
    EXPECT_EQ (p.frame_count (), 0u);
  }
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
  auto database = trusting (identity->certificate_file);
  g_object_set (p.by_name ("src"), "tls-database", database.get (), nullptr);
  ASSERT_TRUE (p.play ());
  EXPECT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
}

TEST (FakeCamera, ProxyRelaysResetsBothSidesAndSwitchesTarget)
{
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  TcpProxy proxy (camera.port ());
  ASSERT_TRUE (proxy.start ());
  const std::string uri = "rtsp://127.0.0.1:" + std::to_string (proxy.port ()) + "/cam";
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client (uri)));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (5, 10s)) << p.describe_messages ();
  EXPECT_EQ (proxy.relays (), 1u);
  EXPECT_EQ (camera.clients (), 1u);

  EXPECT_EQ (proxy.reset_connections (), 1u);
  EXPECT_EQ (proxy.relays (), 0u);
  ASSERT_TRUE (p.wait_error_or_eos (10s)) << p.describe_messages ();
  // The camera's side is gone too.
  for (int i = 0; i < 50 && camera.clients () > 0; i++)
    p.wait_until ([] { return false; }, 100ms);
  EXPECT_EQ (camera.clients (), 0u);
  p.stop ();

  RtspCameraOptions options;
  options.width = 320;
  options.height = 180;
  FakeRtspCamera second (options);
  ASSERT_TRUE (second.start ());
  proxy.set_target (second.port ());
  TestPipeline again;
  ASSERT_TRUE (again.launch (rtsp_client (uri)));
  ASSERT_TRUE (again.play ());
  ASSERT_TRUE (again.wait_frames (5, 10s)) << again.describe_messages ();
  EXPECT_EQ (again.frames ()[0].width, 320);
}

// What a reset looks like to each side: ECONNRESET, not an end of stream.
TEST (FakeCamera, ProxyResetIsARstOnBothSides)
{
  std::atomic<int> server_saw{1};
  TcpServer server ([&] (int fd, const std::atomic<bool> &stopping) {
    guint8 byte;
    while (!stopping) {
      struct pollfd pfd = {fd, POLLIN, 0};
      if (poll (&pfd, 1, 100) <= 0)
        continue;
      ssize_t n = recv (fd, &byte, 1, 0);
      if (n <= 0) {
        server_saw = n < 0 ? -errno : 0;
        return;
      }
    }
  });
  ASSERT_TRUE (server.start ());
  TcpProxy proxy (server.port ());
  ASSERT_TRUE (proxy.start ());
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE (fd, 0);
  struct sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons (proxy.port ());
  address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  ASSERT_EQ (connect (fd, reinterpret_cast<struct sockaddr *> (&address), sizeof (address)), 0);
  ASSERT_EQ (send (fd, "x", 1, MSG_NOSIGNAL), 1);
  for (int i = 0; i < 50 && server.open_connections () == 0; i++)
    std::this_thread::sleep_for (20ms);  // polling a counter: no event to wait on
  ASSERT_EQ (server.open_connections (), 1u);
  EXPECT_EQ (proxy.reset_connections (), 1u);
  struct pollfd pfd = {fd, POLLIN, 0};
  ASSERT_EQ (poll (&pfd, 1, 2000), 1);
  char byte;
  EXPECT_EQ (recv (fd, &byte, 1, 0), -1);
  EXPECT_EQ (errno, ECONNRESET) << std::strerror (errno);
  close (fd);
  for (int i = 0; i < 50 && server.open_connections () > 0; i++)
    std::this_thread::sleep_for (20ms);
  EXPECT_EQ (server_saw.load (), -ECONNRESET);
}

TEST (FakeCamera, TlsProxyServesHttpsInFrontOfAnMjpegCamera)
{
  const TlsIdentity *identity = tls_identity ();
  ASSERT_NE (identity, nullptr) << "needs the openssl command";
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  TcpProxy proxy (camera.port (), identity->pem);
  ASSERT_TRUE (proxy.start ());
  const std::string uri = "https://127.0.0.1:" + std::to_string (proxy.port ()) + "/video.mjpg";
  TestPipeline p;
  ASSERT_TRUE (p.launch ("souphttpsrc name=http location=\"" + uri + "\" is-live=true timeout=5"
                         " ! multipartdemux ! image/jpeg ! jpegparse"
                         " ! appsink name=sink sync=false"));
  // Not ssl-ca-file: with libsoup 3, souphttpsrc 1.22 only applies tls-database.
  auto database = trusting (identity->certificate_file);
  g_object_set (p.by_name ("http"), "tls-database", database.get (), nullptr);
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (10, 10s)) << p.describe_messages ();
  EXPECT_EQ (p.frames ()[0].media_type, "image/jpeg");
  EXPECT_EQ (p.frames ()[0].width, 320);
}

TEST (FakeCamera, GarbageServerMakesRtspsrcFail)
{
  TcpServer server (garbage_handler ());
  ASSERT_TRUE (server.start ());
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client ("rtsp://127.0.0.1:" + std::to_string (server.port ()) +
                                      "/cam")));
  p.play ();
  EXPECT_TRUE (p.wait_error (10s)) << p.describe_messages ();
  EXPECT_GE (server.accepted (), 1u);
  EXPECT_EQ (p.frame_count (), 0u);
}

TEST (FakeCamera, SilentServerAcceptsAndNeverAnswers)
{
  TcpServer server (silent_handler ());
  ASSERT_TRUE (server.start ());
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client ("rtsp://127.0.0.1:" + std::to_string (server.port ()) +
                                      "/cam")));
  p.play ();
  for (int i = 0; i < 50 && server.accepted () == 0; i++)
    p.wait_until ([] { return false; }, 100ms);
  EXPECT_EQ (server.accepted (), 1u);
  EXPECT_EQ (server.open_connections (), 1u);
  EXPECT_FALSE (p.wait_error_or_eos (1s)) << "a silent server gives no answer at all";
  p.stop ();
  auto before = SteadyClock::now ();
  server.stop ();
  EXPECT_LT (seconds_between (before, SteadyClock::now ()), 1.0);
}

TEST (FakeCamera, ClosedPortRefuses)
{
  guint16 port = closed_port ();
  ASSERT_NE (port, 0);
  TestPipeline p;
  ASSERT_TRUE (p.launch (rtsp_client ("rtsp://127.0.0.1:" + std::to_string (port) + "/cam")));
  p.play ();
  EXPECT_TRUE (p.wait_error (10s));
}

TEST (FakeCamera, MjpegServesLiveAndRestarts)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  const guint16 port = camera.port ();
  TestPipeline p;
  ASSERT_TRUE (p.launch (mjpeg_client (camera.uri ())));
  ASSERT_TRUE (p.play ());
  ASSERT_TRUE (p.wait_frames (16, 10s)) << p.describe_messages ();
  auto frames = p.frames ();
  double span = seconds_between (frames[0].arrival, frames[15].arrival);
  EXPECT_GT (span, 0.7);
  EXPECT_LT (span, 1.5);
  EXPECT_EQ (frames[0].media_type, "image/jpeg");
  EXPECT_EQ (frames[0].width, 320);

  auto before = SteadyClock::now ();
  camera.stop ();
  EXPECT_LT (seconds_between (before, SteadyClock::now ()), 1.0);
  EXPECT_TRUE (p.wait_error_or_eos (10s)) << p.describe_messages ();
  p.stop ();

  ASSERT_TRUE (camera.restart ());
  EXPECT_EQ (camera.port (), port);
  TestPipeline again;
  ASSERT_TRUE (again.launch (mjpeg_client (camera.uri ())));
  ASSERT_TRUE (again.play ());
  EXPECT_TRUE (again.wait_frames (5, 10s)) << again.describe_messages ();

  camera.stall ();
  again.wait_until ([] { return false; }, 300ms);
  size_t stalled = again.frame_count ();
  again.wait_until ([] { return false; }, 500ms);
  EXPECT_EQ (again.frame_count (), stalled);
  camera.resume ();
  EXPECT_TRUE (again.wait_frames (stalled + 5, 5s));
}

TEST (FakeCamera, MjpegStatusAndWrongPath)
{
  FakeMjpegCamera camera;
  ASSERT_TRUE (camera.start ());
  camera.set_status (503);
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (mjpeg_client (camera.uri ())));
    p.play ();
    EXPECT_TRUE (p.wait_error (10s));
  }
  camera.set_status (200);
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (mjpeg_client ("http://127.0.0.1:" + std::to_string (camera.port ()) +
                                         "/nothing")));
    p.play ();
    EXPECT_TRUE (p.wait_error (10s));
  }
}

// stop () leaves nothing of the RTSP server running, even when a media's
// bus thread is slow to finish, as on a loaded machine: what that thread
// still holds (its GstRTSPThread) would otherwise outlive the test and fail
// the run in the leaks tracer at exit.
TEST (FakeCamera, StopWaitsForSlowMediaThreads)
{
  if (live_objects ("GstRTSPThread") < 0)
    GTEST_SKIP () << "needs GST_TRACERS=leaks";
  FakeRtspCamera camera;
  ASSERT_TRUE (camera.start ());
  {
    TestPipeline p;
    ASSERT_TRUE (p.launch (rtsp_client (camera.uri ())));
    ASSERT_TRUE (p.play ());
    ASSERT_TRUE (p.wait_frames (1, 10s)) << p.describe_messages ();
    camera.hold_media_threads (std::chrono::milliseconds (500));
  }
  camera.stop ();
  EXPECT_EQ (live_objects ("GstRTSPThread"), 0);
}

TEST (FakeCamera, StartStopLeavesNoThreadsOrFds)
{
  // Warm up (clip encoding, GLib's and GStreamer's own lazily made threads).
  {
    FakeRtspCamera camera;
    ASSERT_TRUE (camera.start ());
    camera.stop ();
    FakeMjpegCamera mjpeg;
    ASSERT_TRUE (mjpeg.start ());
  }
  int threads = count_dir ("/proc/self/task");
  int fds = count_dir ("/proc/self/fd");
  for (int i = 0; i < 5; i++) {
    FakeRtspCamera camera;
    ASSERT_TRUE (camera.start ());
    TcpServer garbage (garbage_handler ());
    ASSERT_TRUE (garbage.start ());
    FakeMjpegCamera mjpeg;
    ASSERT_TRUE (mjpeg.start ());
  }
  EXPECT_EQ (count_dir ("/proc/self/fd"), fds);
  EXPECT_LE (count_dir ("/proc/self/task"), threads + 2);
}

