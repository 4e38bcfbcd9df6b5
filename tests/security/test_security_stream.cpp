// Caps on what one RTSP message may hold, against the real camrelay binary:
// clients and cameras that send endless headers or bodies cost a bounded
// amount of memory and lose their connection; nobody else notices.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <thread>

#include "hostile_camera.h"
#include "launcher_test_util.h"
#include "security/security_wire.h"

namespace {

using namespace camrelay::launcher_test;
using camtest::HostileRtspCamera;
using camtest::Hostility;
using camrelay::security_test::rss_kb;
using camrelay::security_test::RSS_SLACK_KB;

std::string
header_lines (unsigned first, unsigned count)
{
  std::string lines;
  for (unsigned i = first; i < first + count; i++)
    lines += "X-Flood-" + std::to_string (i) + ": more\r\n";
  return lines;
}

// A client playing `mount` over TCP keeps getting frames.
void
expect_still_playing (RtspClient &viewer, const std::string &what)
{
  const int before = viewer.frames;
  EXPECT_TRUE (viewer.wait_frames (before + 15, 15s)) << what << ": the viewer stopped";
}

class SecurityStream : public ::testing::Test {
 protected:
  void start (const std::string &cameras)
  {
    config_ = write_config (config_text (cameras));
    camrelay_ = std::make_unique<Launcher> (std::vector<std::string>{"-c", config_});
    port_ = camrelay_->rtsp_port ();
    ASSERT_GT (port_, 0) << camrelay_->all_output ();
  }

  void TearDown () override
  {
    if (camrelay_)
      expect_clean_stop (*camrelay_, config_);
  }

  std::string config_;
  std::unique_ptr<Launcher> camrelay_;
  int port_ = 0;
};

// Sends `start` then two million header lines (about 50 MB), each chunk
// through `encode`; true when the connection was closed before the end or
// within 10 s of it.  `peak` is the highest RSS of camrelay seen meanwhile.
template <typename Encode>
bool
flood_headers (RawRtsp &attacker, int pid, const std::string &start, Encode encode, long &peak)
{
  bool refused = !attacker.send_text (encode (start));
  for (unsigned chunk = 0; !refused && chunk < 2000; chunk++) {
    refused = !attacker.send_text (encode (header_lines (chunk * 1000, 1000)));
    if (chunk % 20 == 0)
      peak = std::max (peak, rss_kb (pid));
  }
  const bool closed = refused || attacker.wait_closed_by_server (10s);
  peak = std::max (peak, rss_kb (pid));
  return closed;
}

std::string
as_is (const std::string &text)
{
  return text;
}

// Two million header lines in one request: the connection is closed after
// the header cap, and camrelay's memory stays where it was.  Over RTSP, in
// the GET of an RTSP-over-HTTP tunnel (which GstRTSPConnection parses too),
// and in the base64 RTSP of a tunnel's POST.
TEST_F (SecurityStream, ClientSendingTwoMillionHeaderLinesIsClosed)
{
  start (camera_entry ("cam", "test://cam?width=320&height=240"));
  RtspClient viewer ("rtsp://127.0.0.1:" + std::to_string (port_) + "/cam", "tcp", false);
  ASSERT_TRUE (viewer.wait_frames (10, 20s)) << camrelay_->all_output ();
  const int pid = camrelay_->pid ();
  const std::string url = "rtsp://127.0.0.1:" + std::to_string (port_) + "/cam";

  {
    SCOPED_TRACE ("RTSP");
    const long idle = rss_kb (pid);
    long peak = idle;
    RawRtsp attacker (port_);
    EXPECT_TRUE (flood_headers (attacker, pid, "OPTIONS " + url + " RTSP/1.0\r\nCSeq: 1\r\n",
        as_is, peak)) << "the connection is still open";
    EXPECT_LE (peak - idle, RSS_SLACK_KB) << "RSS " << idle << " kB idle, " << peak << " kB at most";
    EXPECT_NE (camrelay_->wait_line ("sent a request with a header block over 256 lines", 5s), "")
        << camrelay_->all_output ();
  }
  {
    SCOPED_TRACE ("HTTP tunnel POST");
    RawRtsp get (port_);
    ASSERT_TRUE (get.send_text ("GET /cam HTTP/1.0\r\nx-sessioncookie: b2\r\n"
                                "Accept: application/x-rtsp-tunnelled\r\n\r\n"));
    ASSERT_NE (get.read_response ().find (" 200 "), std::string::npos);
    const long idle = rss_kb (pid);
    long peak = idle;
    RawRtsp post (port_);
    ASSERT_TRUE (post.send_text ("POST /cam HTTP/1.0\r\nx-sessioncookie: b2\r\n"
                                 "Content-Type: application/x-rtsp-tunnelled\r\n"
                                 "Content-Length: 32767\r\n\r\n"));
    gint state = 0, save = 0;
    auto encode = [&] (const std::string &text) {
      std::string out (text.size () * 4 / 3 + 8, '\0');
      out.resize (g_base64_encode_step (reinterpret_cast<const guchar *> (text.data ()),
          text.size (), FALSE, out.data (), &state, &save));
      return out;
    };
    EXPECT_TRUE (flood_headers (post, pid, "OPTIONS " + url + " RTSP/1.0\r\nCSeq: 1\r\n", encode,
        peak)) << "the connection is still open";
    EXPECT_LE (peak - idle, RSS_SLACK_KB) << "RSS " << idle << " kB idle, " << peak << " kB at most";
    EXPECT_NE (camrelay_->wait_line ("sent an RTSP-over-HTTP tunnel carrying a request with a "
                                     "header block over 256 lines", 5s), "")
        << camrelay_->all_output ();
  }

  {
    SCOPED_TRACE ("HTTP tunnel GET");
    const long idle = rss_kb (pid);
    long peak = idle;
    RawRtsp attacker (port_);
    EXPECT_TRUE (flood_headers (attacker, pid, "GET /cam HTTP/1.0\r\nx-sessioncookie: a1\r\n",
        as_is, peak)) << "the connection is still open";
    EXPECT_LE (peak - idle, RSS_SLACK_KB) << "RSS " << idle << " kB idle, " << peak << " kB at most";
    EXPECT_NE (camrelay_->wait_line ("sent an HTTP message with a header block over 256 lines", 5s),
        "") << camrelay_->all_output ();
  }
  expect_still_playing (viewer, "after the header floods");
  RtspProbe other (port_);
  EXPECT_EQ (other.request ("OPTIONS", "cam").status, "RTSP/1.0 200 OK");
}

// A 4 GB Content-Length and a body that keeps coming: closed at once.
TEST_F (SecurityStream, ClientSendingAnEndlessBodyIsClosed)
{
  start (camera_entry ("cam", "test://cam?width=320&height=240"));
  RtspClient viewer ("rtsp://127.0.0.1:" + std::to_string (port_) + "/cam", "tcp", false);
  ASSERT_TRUE (viewer.wait_frames (10, 20s)) << camrelay_->all_output ();
  const long idle = rss_kb (camrelay_->pid ());

  RawRtsp attacker (port_);
  ASSERT_TRUE (attacker.ok ());
  bool refused = !attacker.send_text ("SET_PARAMETER rtsp://127.0.0.1:" + std::to_string (port_) +
                                      "/cam RTSP/1.0\r\nCSeq: 1\r\nContent-Type: text/parameters\r\n"
                                      "Content-Length: 4000000000\r\n\r\n");
  const std::string body (1024 * 1024, 'b');
  long peak = idle;
  for (unsigned mb = 0; !refused && mb < 300; mb++) {
    refused = !attacker.send_text (body);
    if (mb % 10 == 0)
      peak = std::max (peak, rss_kb (camrelay_->pid ()));
  }
  EXPECT_TRUE (refused || attacker.wait_closed_by_server (10s));
  peak = std::max (peak, rss_kb (camrelay_->pid ()));
  EXPECT_LE (peak - idle, RSS_SLACK_KB) << "RSS " << idle << " kB idle, " << peak << " kB at most";
  EXPECT_NE (camrelay_->wait_line ("sent a request with a Content-Length of 4000000000", 5s), "")
      << camrelay_->all_output ();
  expect_still_playing (viewer, "after the endless body");
}

// The caps follow every TCP connection of camrelay: what is not RTSP
// passes through.  An HTTP MJPEG camera streams, an interleaved RTSP
// camera streams, the HTTP API answers.
TEST_F (SecurityStream, OtherProtocolsAndOrdinaryCamerasAreUntouched)
{
  camtest::FakeMjpegCamera mjpeg;
  ASSERT_TRUE (mjpeg.start ());
  camtest::FakeRtspCamera rtsp;
  ASSERT_TRUE (rtsp.start ());
  start (camera_entry ("mj", mjpeg.uri ()) + camera_entry ("h264", rtsp.uri ()) +
         "transport = \"tcp\"\n\n");
  EXPECT_NE (camrelay_->wait_line ("camera mj: connecting -> streaming", 30s), "")
      << camrelay_->all_output ();
  RtspClient viewer ("rtsp://127.0.0.1:" + std::to_string (port_) + "/h264", "tcp", false);
  EXPECT_TRUE (viewer.wait_frames (30, 20s)) << camrelay_->all_output ();
  RtspProbe probe (port_);
  const RtspProbe::Response sdp = probe.request ("DESCRIBE", "mj", {"Accept: application/sdp"});
  EXPECT_EQ (sdp.status, "RTSP/1.0 200 OK");
  EXPECT_NE (sdp.body.find ("JPEG"), std::string::npos) << sdp.body;
  const int http_port = camrelay_->http_port ();
  ASSERT_GT (http_port, 0);
  int status = 0;
  EXPECT_NE (http_get (http_port, "/healthz", status).find ("200"), std::string::npos);
  EXPECT_EQ (camrelay_->all_output ().find ("RTSP peer"), std::string::npos)
      << camrelay_->all_output ();
}

// A camera answering DESCRIBE with endless headers, or with an endless body:
// the camera reconnects, the guard names the cause, memory stays bounded and
// the camera next to it keeps streaming.
class SecurityStreamCamera : public SecurityStream,
                             public ::testing::WithParamInterface<Hostility> {};

TEST_P (SecurityStreamCamera, HostileCameraAnswerIsCutAndRetried)
{
  HostileRtspCamera hostile (GetParam ());
  ASSERT_TRUE (hostile.start ());
  camtest::FakeRtspCamera healthy;
  ASSERT_TRUE (healthy.start ());
  // The hostile camera on demand: idle memory is measured before it is asked for.
  start (camera_entry ("bad", hostile.uri ()) + "on_demand = true\nfallback = \"none\"\n\n" +
         camera_entry ("good", healthy.uri ()));
  RtspClient viewer ("rtsp://127.0.0.1:" + std::to_string (port_) + "/good", "tcp", false);
  ASSERT_TRUE (viewer.wait_frames (10, 20s)) << camrelay_->all_output ();
  const long idle = rss_kb (camrelay_->pid ());

  // Asking for the camera connects it; its answer comes after 10 s at most.
  std::thread asker ([this] {
    RtspProbe probe (port_);
    probe.request ("DESCRIBE", "bad", {"Accept: application/sdp"});
  });
  long peak = idle;
  const auto deadline = Clock::now () + 30s;
  bool cut = false;
  while (!cut && Clock::now () < deadline) {
    peak = std::max (peak, rss_kb (camrelay_->pid ()));
    cut = camrelay_->wait_line ("RTSP peer 127.0.0.1:" + std::to_string (hostile.port ()) +
                                    " sent an answer with a ", 100ms) != "";
  }
  EXPECT_TRUE (cut) << camrelay_->all_output ();
  EXPECT_NE (camrelay_->wait_line ("camera bad: connecting -> reconnecting", 10s), "")
      << camrelay_->all_output ();
  // The next attempt is cut the same way.
  EXPECT_TRUE (hostile.wait_stuck (2, 30s));
  for (int i = 0; i < 20; i++) {
    peak = std::max (peak, rss_kb (camrelay_->pid ()));
    std::this_thread::sleep_for (50ms);  // sampling memory, not waiting for an event
  }
  asker.join ();
  EXPECT_LE (peak - idle, RSS_SLACK_KB) << "RSS " << idle << " kB idle, " << peak << " kB at most";
  expect_still_playing (viewer, "while the other camera misbehaved");
  hostile.stop ();
}

INSTANTIATE_TEST_SUITE_P (Stream, SecurityStreamCamera,
    ::testing::Values (Hostility::EndlessHeaders, Hostility::EndlessBody),
    [] (const ::testing::TestParamInfo<Hostility> &info) {
      return std::string (camtest::hostility_name (info.param));
    });

}  // namespace
