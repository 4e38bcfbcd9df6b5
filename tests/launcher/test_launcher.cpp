// Integration tests of the camrelay launcher: the real binary, started as a
// child process, against the synthetic camera, with real RTSP clients
// (GStreamer's rtspsrc in this process, ffprobe/ffmpeg from Debian).
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include <csignal>
#include <gst/app/app.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/gstref.h"
#include "common/fake_camera.h"
#include "launcher_test_util.h"

namespace {

using namespace camrelay::launcher_test;

// camrelay with no arguments: the synthetic test camera at
// rtsp://127.0.0.1:8554/test, for VLC, ffplay, ffprobe...
TEST (Launcher, NoArgumentsServesTheTestCamera)
{
  Launcher camrelay ({});
  ASSERT_EQ (camrelay.rtsp_port (), 8554) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("rtsp://127.0.0.1:8554/test", 5s), "");
  ASSERT_NE (camrelay.wait_line ("-> streaming", 20s), "") << camrelay.all_output ();

  int status = 0;
  std::string probe = run ("timeout 20 ffprobe -v error -rtsp_transport tcp -show_entries "
                           "stream=codec_name,width,height -of csv=p=0 rtsp://127.0.0.1:8554/test",
      status);
  EXPECT_EQ (status, 0);
  EXPECT_EQ (probe, "h264,1280,720\n");

  // A third-party client decodes frames.
  run ("timeout 20 ffmpeg -v error -rtsp_transport tcp -i rtsp://127.0.0.1:8554/test "
       "-frames:v 10 -f null -",
      status);
  EXPECT_EQ (status, 0) << "ffmpeg could not decode 10 frames";

  camrelay.send_signal (SIGTERM);
  EXPECT_EQ (camrelay.wait_exit (5s), 0) << camrelay.all_output ();
}



// Two cameras, each its own mount; clients over TCP and UDP decode frames;
// the HTTP endpoints report both.
TEST (Launcher, TwoCamerasOverTcpAndUdpWithHealthAndMetrics)
{
  const std::string path = write_config (config_text (
      camera_entry ("front", "test://front?width=320&height=240")
      + camera_entry ("back", "test://back?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const int http = camrelay.http_port ();
  ASSERT_GT (http, 0) << camrelay.all_output ();

  const std::string base = "rtsp://127.0.0.1:" + std::to_string (port) + "/";
  RtspClient tcp (base + "front", "tcp");
  RtspClient udp (base + "back", "udp");
  EXPECT_TRUE (tcp.wait_frames (15, 20s)) << camrelay.all_output ();
  EXPECT_TRUE (udp.wait_frames (15, 20s)) << camrelay.all_output ();

  int status = 0;
  std::string health = http_get (http, "/healthz", status);
  EXPECT_NE (health.find ("\"status\":\"ok\""), std::string::npos) << health;
  EXPECT_EQ (health.substr (health.size () - 3), "200");
  std::string metrics = http_get (http, "/metrics", status);
  EXPECT_NE (metrics.find ("camrelay_camera_up{camera=\"front\"} 1"), std::string::npos) << metrics;
  EXPECT_NE (metrics.find ("camrelay_camera_up{camera=\"back\"} 1"), std::string::npos) << metrics;
  EXPECT_NE (metrics.find ("camrelay_camera_clients{camera=\"front\"} 1"), std::string::npos)
      << metrics;
  // The process's memory: resident size from /proc (over a MiB for any
  // GStreamer process), the heap from the allocator (zero under
  // AddressSanitizer, which has its own).
  const std::string resident = "\nprocess_resident_memory_bytes ";
  const size_t at = metrics.find (resident);
  ASSERT_NE (at, std::string::npos) << metrics;
  EXPECT_GT (std::atol (metrics.c_str () + at + resident.size ()), 1L << 20) << metrics;
  EXPECT_NE (metrics.find ("\ncamrelay_heap_bytes{state=\"in_use\"} "), std::string::npos) << metrics;
  std::string cameras = http_get (http, "/api/cameras", status);
  EXPECT_NE (cameras.find ("\"name\":\"front\""), std::string::npos) << cameras;

  expect_clean_stop (camrelay, path);
}

// The camera drops its connection every 2 s: the five clients stay
// connected, and their frames go on after each reconnect.
TEST (Launcher, CameraRebootKeepsEveryClientConnected)
{
  const std::string path = write_config (config_text (
      camera_entry ("flaky", "test://flaky?width=320&height=240&drop-after=2")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const std::string url = "rtsp://127.0.0.1:" + std::to_string (port) + "/flaky";

  std::vector<std::unique_ptr<RtspClient>> clients;
  for (int i = 0; i < 5; i++)
    clients.push_back (std::make_unique<RtspClient> (url, "tcp"));
  for (auto &c : clients)
    ASSERT_TRUE (c->wait_frames (5, 20s)) << camrelay.all_output ();

  ASSERT_NE (camrelay.wait_line ("-> reconnecting", 10s), "") << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("reconnecting -> connecting", 10s), "") << camrelay.all_output ();
  std::vector<int> before;
  for (auto &c : clients)
    before.push_back (c->frames);
  // Video again after the camera came back, for every client.
  for (size_t i = 0; i < clients.size (); i++)
    EXPECT_TRUE (clients[i]->wait_frames (before[i] + 20, 20s))
        << "client " << i << " stopped at " << clients[i]->frames << " frames\n"
        << camrelay.all_output ();
  for (auto &c : clients)
    EXPECT_EQ (c->errors_or_eos (), 0);

  clients.clear ();
  expect_clean_stop (camrelay, path);
}

TEST (Launcher, BadConfigExitsWith2AndNamesFileLineAndKey)
{
  const std::string path = write_config (config_text (
      camera_entry ("front", "test://front") + "transport = \"tpc\"\n"));
  Launcher camrelay ({"-c", path});
  EXPECT_EQ (camrelay.wait_exit (10s), 2);
  const std::string expected = path + ":";
  std::string line = camrelay.wait_line (expected, 1s);
  EXPECT_NE (line, "") << camrelay.all_output ();
  EXPECT_NE (line.find ("transport"), std::string::npos) << line;
  EXPECT_EQ (camrelay.wait_line ("on RTSP", 0ms), "") << "nothing may start";
  g_unlink (path.c_str ());
}

TEST (Launcher, CheckValidatesAndExits)
{
  const std::string path = write_config (config_text (camera_entry ("front", "test://front")));
  Launcher camrelay ({"--check", "-c", path});
  EXPECT_EQ (camrelay.wait_exit (10s), 0) << camrelay.all_output ();
  g_unlink (path.c_str ());
}

TEST (Launcher, PortInUseIsAOneLineError)
{
  // Hold a port, then ask camrelay to serve on it.
  GError *error = nullptr;
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, &error);
  ASSERT_NE (socket, nullptr);
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new (loopback, 0);
  ASSERT_TRUE (g_socket_bind (socket, address, FALSE, &error));
  ASSERT_TRUE (g_socket_listen (socket, &error));
  GSocketAddress *bound = g_socket_get_local_address (socket, &error);
  const int port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  const std::string path = write_config (config_text (camera_entry ("front", "test://front"), port));
  Launcher camrelay ({"-c", path});
  EXPECT_EQ (camrelay.wait_exit (10s), 1);
  std::string line = camrelay.wait_line (std::to_string (port), 1s);
  EXPECT_NE (line, "") << camrelay.all_output ();

  g_object_unref (bound);
  g_object_unref (address);
  g_object_unref (loopback);
  g_object_unref (socket);
  g_unlink (path.c_str ());
}

// RTSP Basic and Digest against [[users]], a password hash, and per-camera
// permitted users.
TEST (Launcher, AuthenticationMatrix)
{
  const std::string users = "[[users]]\nname = \"alice\"\npassword = \"wonder\"\n\n"
      "[[users]]\nname = \"bob\"\npassword_hash = \"sha256:" + sha256 ("builder") + "\"\n\n";
  const std::string path = write_config (config_text (users
      + camera_entry ("front", "test://front?width=320&height=240")
      + camera_entry ("private", "test://private?width=320&height=240")
      + "users = [\"alice\"]\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("private: connecting -> streaming", 20s), "");
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");

  RtspProbe probe (port);
  EXPECT_EQ (probe.describe ("front"), "RTSP/1.0 401 Unauthorized") << "no credentials";
  EXPECT_EQ (probe.describe ("front", "alice:wrong"), "RTSP/1.0 401 Unauthorized");
  EXPECT_EQ (probe.describe ("front", "alice:wonder"), "RTSP/1.0 200 OK") << "Basic";
  EXPECT_EQ (probe.describe ("front", "bob:builder"), "RTSP/1.0 200 OK") << "Basic, hash";
  EXPECT_EQ (probe.describe ("front", "bob:wrong"), "RTSP/1.0 401 Unauthorized");
  EXPECT_EQ (probe.describe ("private", "alice:wonder"), "RTSP/1.0 200 OK");
  // Not permitted: the mount is not revealed to that user.
  EXPECT_EQ (probe.describe ("private", "bob:builder"), "RTSP/1.0 404 Not Found");
  EXPECT_NE (camrelay.wait_line ("authentication failed for user bob", 5s), "");
  EXPECT_EQ (camrelay.all_output ().find ("wonder"), std::string::npos) << "a password was logged";
  EXPECT_EQ (camrelay.all_output ().find ("builder"), std::string::npos) << "a password was logged";

  // Digest: rtspsrc answers the server's Digest challenge.
  {
    RtspClient digest ("rtsp://127.0.0.1:" + std::to_string (port) + "/private user-id=alice user-pw=wonder", "tcp");
    EXPECT_TRUE (digest.wait_frames (10, 20s)) << camrelay.all_output ();
  }
  expect_clean_stop (camrelay, path);
}

// max_clients of a camera: the next client gets 453 Not Enough Bandwidth;
// server.max_clients: 503 Service Unavailable.
TEST (Launcher, ClientLimitsAnswerWithRtspStatus)
{
  const std::string path = write_config (
      "[server]\nbind = \"127.0.0.1\"\nport = 0\nmax_clients = 2\n\n[http]\nenabled = false\n\n"
      + camera_entry ("one", "test://one?width=320&height=240") + "max_clients = 1\n\n"
      + camera_entry ("two", "test://two?width=320&height=240"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const std::string base = "rtsp://127.0.0.1:" + std::to_string (port) + "/";

  RtspClient first (base + "one", "tcp");
  ASSERT_TRUE (first.wait_frames (5, 20s)) << camrelay.all_output ();
  {
    RtspClient second (base + "one", "tcp");
    EXPECT_NE (camrelay.wait_line ("max_clients of camera one", 15s), "") << camrelay.all_output ();
    EXPECT_EQ (second.frames.load (), 0);
  }
  RtspClient other (base + "two", "tcp");
  ASSERT_TRUE (other.wait_frames (5, 20s)) << camrelay.all_output ();
  {
    RtspClient third (base + "two", "tcp");
    EXPECT_NE (camrelay.wait_line ("(server.max_clients)", 15s), "") << camrelay.all_output ();
    EXPECT_EQ (third.frames.load (), 0);
  }
  EXPECT_TRUE (first.wait_frames (first.frames + 10, 10s)) << "the admitted client goes on";

  expect_clean_stop (camrelay, path);
}

// SIGHUP: cameras added and removed take effect, an unchanged camera's
// clients are untouched, an invalid configuration is refused.
TEST (Launcher, SighupReloadsCamerasAndKeepsUnchangedClients)
{
  const std::string keep = camera_entry ("keep", "test://keep?width=320&height=240");
  const std::string path = write_config (config_text (
      keep + camera_entry ("drop", "test://drop?width=320&height=240"), 0, 0));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  RtspClient client ("rtsp://127.0.0.1:" + std::to_string (port) + "/keep", "tcp");
  ASSERT_TRUE (client.wait_frames (5, 20s)) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("drop: connecting -> streaming", 20s), "");

  std::ofstream (path) << config_text (keep + camera_entry ("new", "test://new?width=320&height=240"), 0, 0);
  camrelay.send_signal (SIGHUP);
  EXPECT_NE (camrelay.wait_line ("reload: 1 camera(s) added, 1 removed, 0 changed, 1 untouched", 10s), "")
      << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("new: connecting -> streaming", 20s), "") << camrelay.all_output ();
  RtspProbe probe (port);
  EXPECT_EQ (probe.describe ("new"), "RTSP/1.0 200 OK");
  EXPECT_EQ (probe.describe ("drop"), "RTSP/1.0 404 Not Found");
  EXPECT_TRUE (client.wait_frames (client.frames + 20, 10s)) << "the unchanged camera's client stopped";

  std::ofstream (path) << config_text (keep + "bogus_key = 1\n", 0, 0);
  camrelay.send_signal (SIGHUP);
  EXPECT_NE (camrelay.wait_line ("reload: refused", 10s), "") << camrelay.all_output ();
  EXPECT_EQ (probe.describe ("new"), "RTSP/1.0 200 OK") << "the running configuration stays";
  EXPECT_TRUE (client.wait_frames (client.frames + 20, 10s));
  EXPECT_EQ (client.errors_or_eos (), 0);

  expect_clean_stop (camrelay, path);
}

// A client of a camera that has not sent video yet waits a bounded time,
// then gets a clean 503; the other cameras are served meanwhile.
TEST (Launcher, CameraWithoutVideoAnswers503)
{
  const std::string path = write_config (config_text (
      camera_entry ("dead", "rtsp://127.0.0.1:9/nothing")
      + camera_entry ("live", "test://live?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const auto start = Clock::now ();
  RtspProbe probe (port);
  EXPECT_EQ (probe.describe ("dead"), "RTSP/1.0 503 Service Unavailable");
  EXPECT_LT (Clock::now () - start, 14s);
  EXPECT_NE (camrelay.wait_line ("no video from camera dead yet", 1s), "");
  EXPECT_EQ (probe.describe ("live"), "RTSP/1.0 200 OK");
  EXPECT_EQ (camrelay.all_output ().find ("CRITICAL"), std::string::npos) << camrelay.all_output ();
  expect_clean_stop (camrelay, path);
}

// Players and NVRs often DESCRIBE on a connection of its own and close it:
// the shared media stays, and every DESCRIBE is answered at once.
TEST (Launcher, DescribeOnlyClientsNeverBreakTheSharedMedia)
{
  const std::string path = write_config (config_text (
      camera_entry ("front", "test://front?width=320&height=240&gop=60")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");
  int ok = 0;
  std::vector<std::string> failures;
  const auto start = Clock::now ();
  for (int i = 0; i < 50; i++) {
    RtspProbe probe (port);
    std::string status = probe.describe ("front");
    if (status == "RTSP/1.0 200 OK")
      ok++;
    else
      failures.push_back (std::to_string (i) + ": " + status);
  }
  const double seconds = std::chrono::duration<double> (Clock::now () - start).count ();
  EXPECT_EQ (ok, 50) << failures.size () << " failed, first: " << failures.front ();
  // After the first, no DESCRIBE waits for a new media and its keyframe
  // (a 60-frame GOP is 2 s here).
  EXPECT_LT (seconds, 20.0);
  std::fprintf (stderr, "50 DESCRIBEs on their own connections: %.2f s\n", seconds);
  RtspClient client ("rtsp://127.0.0.1:" + std::to_string (port) + "/front", "tcp");
  EXPECT_TRUE (client.wait_frames (10, 20s)) << camrelay.all_output ();
  expect_clean_stop (camrelay, path);
}

// Every client leaves; the next one still gets video (the media kept for
// it restarts on a keyframe).
TEST (Launcher, ANewClientAfterEveryoneLeftGetsVideo)
{
  const std::string path = write_config (config_text (
      camera_entry ("front", "test://front?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const std::string url = "rtsp://127.0.0.1:" + std::to_string (port) + "/front";
  for (const char *protocols : {"tcp", "udp", "tcp"}) {
    RtspClient client (url, protocols);
    EXPECT_TRUE (client.wait_frames (10, 20s)) << protocols << "\n" << camrelay.all_output ();
    EXPECT_EQ (client.errors_or_eos (), 0);
  }
  expect_clean_stop (camrelay, path);
}

// on_demand: the camera connects with the first client and disconnects
// idle_timeout after the last; the mount exists throughout.
TEST (Launcher, OnDemandCameraConnectsForClientsAndLeavesWhenIdle)
{
  const std::string path = write_config (config_text (
      camera_entry ("lazy", "test://lazy?width=320&height=240")
      + "on_demand = true\nidle_timeout = \"2s\"\n\n"
      + camera_entry ("always", "test://always?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("always: connecting -> streaming", 20s), "");
  EXPECT_EQ (camrelay.all_output ().find ("camera lazy: stopped -> connecting"), std::string::npos)
      << "the on-demand camera connected without a client";
  const std::string url = "rtsp://127.0.0.1:" + std::to_string (port) + "/lazy";
  for (size_t round = 1; round <= 2; round++) {
    {
      RtspClient client (url, "tcp");
      EXPECT_TRUE (client.wait_frames (10, 20s)) << camrelay.all_output ();
      EXPECT_TRUE (camrelay.wait_count ("lazy: connecting for a client (on_demand)", round, 1s));
    }
    EXPECT_TRUE (camrelay.wait_count ("lazy: no client for 2 s: disconnecting", round, 10s))
        << camrelay.all_output ();
  }
  expect_clean_stop (camrelay, path);
}

// An on-demand camera that disconnects as soon as it is idle (idle_timeout
// 0): client after client DESCRIBEs it, each connecting it again, while
// the idle check runs.  A client counts as waiting before the camera starts
// for it, so the idle check never stops the camera under a client: every
// one is answered 200 (before: now and then a 503, when the check ran
// between the start and the count).
TEST (Launcher, OnDemandIdleCheckNeverStopsTheCameraUnderAWaitingClient)
{
  const std::string path = write_config (config_text (
      camera_entry ("lazy", "test://lazy?width=160&height=120&framerate=30&gop=5")
      + "on_demand = true\nidle_timeout = \"0s\"\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  // Until the camera has gone idle (and come back) three times: the idle
  // check runs every 2 s.
  int clients = 0, ok = 0;
  std::vector<std::string> failures;
  const auto deadline = Clock::now () + 40s;
  while (!camrelay.wait_count ("lazy: no client for 0 s: disconnecting", 3, 0ms)
      && Clock::now () < deadline) {
    RtspProbe probe (port);
    const std::string status = probe.describe ("lazy");
    clients++;
    if (status == "RTSP/1.0 200 OK")
      ok++;
    else
      failures.push_back (std::to_string (clients) + ": " + status);
    std::this_thread::sleep_for (50ms);  // pacing: clients spread over several checks
  }
  std::printf ("%d clients, %d answered 200\n", clients, ok);
  EXPECT_TRUE (camrelay.wait_count ("lazy: no client for 0 s: disconnecting", 3, 0ms))
      << camrelay.all_output ();
  EXPECT_EQ (ok, clients) << failures.size () << " refused, first "
                          << (failures.empty () ? "" : failures.front ()) << "\n"
                          << camrelay.all_output ();
  expect_clean_stop (camrelay, path);
}

// A camera's audio goes to the clients with its video, codec untouched.
TEST (Launcher, AudioIsRelayedWithTheVideo)
{
  const std::string path = write_config (config_text (
      camera_entry ("aac", "test://aac?width=320&height=240&audio=aac")
      + camera_entry ("alaw", "test://alaw?width=320&height=240&audio=alaw")
      + camera_entry ("mute", "test://mute?width=320&height=240&audio=aac") + "audio = false\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const std::string base = "rtsp://127.0.0.1:" + std::to_string (port) + "/";
  const std::pair<const char *, const char *> expected[] = {
      {"aac", "h264\naac\n"}, {"alaw", "h264\npcm_alaw\n"}, {"mute", "h264\n"}};
  for (auto [mount, streams] : expected) {
    int status = 0;
    std::string probe = run ("timeout 30 ffprobe -v error -rtsp_transport tcp -show_entries "
                             "stream=codec_name -of csv=p=0 " + base + mount, status);
    EXPECT_EQ (status, 0) << mount;
    EXPECT_EQ (probe, streams) << mount << "\n" << camrelay.all_output ();
  }
  // Both tracks decode.
  int status = 0;
  run ("timeout 30 ffmpeg -v error -rtsp_transport tcp -i " + base
          + "aac -map 0:v -map 0:a -t 2 -f null -", status);
  EXPECT_EQ (status, 0) << "ffmpeg could not decode the audio and video";
  EXPECT_EQ (camrelay.all_output ().find ("-> reconnecting"), std::string::npos)
      << camrelay.all_output ();
  expect_clean_stop (camrelay, path);
}

// A camera's pipeline fragment runs between the camera and its clients:
// here it scales the video down (re-encoding it); a fragment that does not
// build stops camrelay at start with the file, line and key.
TEST (Launcher, PipelineFragmentShapesTheStream)
{
  const std::string path = write_config (config_text (
      camera_entry ("small", "test://small?width=640&height=480")
      + "pipeline = \"avdec_h264 ! videoscale ! video/x-raw,width=160,height=120 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse\"\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  int status = 0;
  std::string probe = run ("timeout 30 ffprobe -v error -rtsp_transport tcp -show_entries "
                           "stream=codec_name,width,height -of csv=p=0 rtsp://127.0.0.1:"
          + std::to_string (port) + "/small", status);
  EXPECT_EQ (status, 0);
  EXPECT_EQ (probe, "h264,160,120\n") << camrelay.all_output ();
  camrelay.send_signal (SIGTERM);
  EXPECT_EQ (camrelay.wait_exit (5s), 0) << camrelay.all_output ();

  std::ofstream (path) << config_text (camera_entry ("bad", "test://bad") + "pipeline = \"no_such_element\"\n");
  Launcher refused ({"-c", path});
  EXPECT_EQ (refused.wait_exit (10s), 2);
  EXPECT_NE (refused.wait_line (path + ":13: cameras[0].pipeline: not a GStreamer pipeline fragment", 1s), "")
      << refused.all_output ();
  g_unlink (path.c_str ());
}

// A pipeline fragment that parses but cannot take the camera's video (raw
// video elements on compressed video) would relay nothing: it is a
// configuration error naming the camera, at --check, at start and at a
// reload (which is refused, the running configuration staying).
TEST (Launcher, PipelineFragmentThatCannotLinkIsAConfigError)
{
  const std::string good = camera_entry ("good", "test://good?width=160&height=120");
  const std::string bad = camera_entry ("bad", "test://bad?width=160&height=120")
      + "pipeline = \"videoconvert ! videoscale\"\n\n";
  const std::string path = write_config (config_text (good + bad));
  {
    Launcher check ({"--check", "-c", path});
    EXPECT_EQ (check.wait_exit (10s), 2) << check.all_output ();
    EXPECT_NE (check.wait_line ("camera bad: pipeline: cannot take the camera's video", 1s), "")
        << check.all_output ();
  }
  {
    Launcher refused ({"-c", path});
    EXPECT_EQ (refused.wait_exit (10s), 2) << refused.all_output ();
    EXPECT_NE (refused.wait_line ("camera bad: pipeline: cannot take the camera's video", 1s), "")
        << refused.all_output ();
  }
  // Its output must be something the relay sends, too.
  std::ofstream (path) << config_text (good + camera_entry ("raw", "test://raw")
      + "pipeline = \"avdec_h264\"\n\n");
  {
    Launcher check ({"--check", "-c", path});
    EXPECT_EQ (check.wait_exit (10s), 2) << check.all_output ();
    EXPECT_NE (check.wait_line ("camera raw: pipeline: gives no video the relay can send", 1s), "")
        << check.all_output ();
  }

  std::ofstream (path) << config_text (good);
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  std::ofstream (path) << config_text (good + bad);
  camrelay.send_signal (SIGHUP);
  EXPECT_NE (camrelay.wait_line ("reload: refused", 10s), "") << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("camera bad: pipeline: cannot take the camera's video", 1s), "")
      << camrelay.all_output ();
  RtspProbe probe (port);
  EXPECT_EQ (probe.describe ("good"), "RTSP/1.0 200 OK");
  EXPECT_EQ (probe.describe ("bad"), "RTSP/1.0 404 Not Found");
  expect_clean_stop (camrelay, path);
}

// SIGHUP with new [[users]] and [http]: new connections and connected
// clients are checked against the new users; HTTP moves or stops.
TEST (Launcher, SighupReloadsUsersAndHttp)
{
  auto users = [] (const std::string &name, const std::string &password) {
    return "[[users]]\nname = \"" + name + "\"\npassword = \"" + password + "\"\n\n";
  };
  const std::string camera = camera_entry ("front", "test://front?width=320&height=240");
  const std::string path = write_config (config_text (users ("alice", "wonder") + camera));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const int http = camrelay.http_port ();
  ASSERT_GT (http, 0);
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");
  RtspProbe connected (port);
  EXPECT_EQ (connected.describe ("front", "alice:wonder"), "RTSP/1.0 200 OK");

  std::ofstream (path) << "[server]\nbind = \"127.0.0.1\"\nport = 0\n\n[http]\nenabled = false\n\n"
                       << users ("bob", "builder") << camera;
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("reload: 1 user(s)", 10s), "") << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("reload: HTTP off", 10s), "") << camrelay.all_output ();
  EXPECT_EQ (connected.describe ("front", "alice:wonder"), "RTSP/1.0 401 Unauthorized")
      << "a connected client keeps a removed user's access";
  RtspProbe fresh (port);
  EXPECT_EQ (fresh.describe ("front", "alice:wonder"), "RTSP/1.0 401 Unauthorized");
  EXPECT_EQ (fresh.describe ("front", "bob:builder"), "RTSP/1.0 200 OK");
  int status = 0;
  std::string answer = http_get (http, "/healthz", status);
  EXPECT_EQ (answer.substr (answer.size () - 3), "000") << "HTTP still answers: " << answer;
  EXPECT_EQ (camrelay.all_output ().find ("builder"), std::string::npos) << "a password was logged";

  expect_clean_stop (camrelay, path);
}

// The camera comes back from a reboot with another codec: its clients are
// closed (a payloader cannot change codec), the next client gets a new RTSP
// media with the new codec, and another camera's clients never notice.
TEST (Launcher, CodecChangeGivesTheNextClientsANewMedia)
{
  camtest::RtspCameraOptions h264;
  h264.width = 320;
  h264.height = 240;
  auto camera = std::make_unique<camtest::FakeRtspCamera> (h264);
  ASSERT_TRUE (camera->start ());
  const guint16 camera_port = camera->port ();
  const std::string path = write_config (config_text (
      camera_entry ("cam", camera->uri ()) + "fallback = \"none\"\n\n"
      + camera_entry ("other", "test://other?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const std::string base = "rtsp://127.0.0.1:" + std::to_string (port) + "/";
  auto codec_of = [&] (const std::string &mount) {
    int status = 0;
    return run ("timeout 30 ffprobe -v error -rtsp_transport tcp -show_entries stream=codec_name "
                "-of csv=p=0 " + base + mount, status);
  };
  EXPECT_EQ (codec_of ("cam"), "h264\n") << camrelay.all_output ();
  RtspClient watcher (base + "cam", "tcp");
  RtspClient other (base + "other", "tcp");
  ASSERT_TRUE (watcher.wait_frames (10, 20s)) << camrelay.all_output ();
  ASSERT_TRUE (other.wait_frames (10, 20s)) << camrelay.all_output ();

  // The camera reboots as an MJPEG camera on the same address.
  camera.reset ();
  camtest::RtspCameraOptions jpeg = h264;
  jpeg.codec = "jpeg";
  camera = std::make_unique<camtest::FakeRtspCamera> (jpeg);
  ASSERT_TRUE (camera->start (camera_port));
  EXPECT_NE (camrelay.wait_line ("cam: video is now image/jpeg: new RTSP media", 30s), "")
      << camrelay.all_output ();
  EXPECT_EQ (codec_of ("cam"), "mjpeg\n") << camrelay.all_output ();
  EXPECT_TRUE (other.wait_frames (other.frames + 30, 10s)) << "another camera's client stopped";
  EXPECT_EQ (other.errors_or_eos (), 0);
  expect_clean_stop (camrelay, path);
}

}  // namespace
