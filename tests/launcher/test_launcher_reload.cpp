// Integration tests of the launcher's configuration reloads under load:
// SIGHUP storms while clients describe and play, which must neither crash
// camrelay nor keep it from stopping.
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "launcher_test_util.h"

namespace {

using namespace camrelay::launcher_test;

// The last `lines` lines of camrelay's output, and every line of an
// AddressSanitizer or GLib report before them: enough to see why it died.
std::string
tail_of (Launcher &camrelay, size_t lines = 60)
{
  const std::string all = camrelay.all_output ();
  std::vector<std::string> split;
  size_t at = 0;
  while (at < all.size ()) {
    size_t end = all.find ('\n', at);
    if (end == std::string::npos)
      end = all.size ();
    split.push_back (all.substr (at, end - at));
    at = end + 1;
  }
  std::string text;
  const size_t first = split.size () > lines ? split.size () - lines : 0;
  for (size_t i = 0; i < first; i++)
    if (split[i].find ("AddressSanitizer") != std::string::npos
        || split[i].find ("CRITICAL") != std::string::npos || split[i].find ("    #") == 0)
      text += split[i] + "\n";
  text += "...\n";
  for (size_t i = first; i < split.size (); i++)
    text += split[i] + "\n";
  return text;
}

// How long the storm lasts: CAMRELAY_STORM_SECONDS, else 20 s.
int
storm_seconds ()
{
  const char *env = g_getenv ("CAMRELAY_STORM_SECONDS");
  const int seconds = env ? std::atoi (env) : 0;
  return seconds > 0 ? seconds : 20;
}

// The configuration of reload number `k`: a camera that stays ("keep"),
// cameras that come, go and change (their picture size) from one reload to
// the next, on-demand cameras that come and go, and a camera that never
// sends video ("dead": a closed port), present every other reload, so that
// a reload often removes a camera a client is waiting for.
std::string
storm_config (int k)
{
  auto test_camera = [] (const std::string &name, int width) {
    return camera_entry (name, "test://" + name + "?width=" + std::to_string (width)
        + "&height=120&framerate=10&gop=10");
  };
  std::string cameras = test_camera ("keep", 160);
  for (int i = 0; i < 3; i++)
    if ((k + i) % 3 != 0)
      cameras += test_camera ("c" + std::to_string (i), (k / (i + 2)) % 2 ? 176 : 160);
  for (int i = 0; i < 2; i++)
    if ((k + i) % 4 != 0)
      cameras += test_camera ("od" + std::to_string (i), 160)
          + "on_demand = true\nidle_timeout = \"1s\"\n\n";
  if (k % 2 == 0)
    cameras += camera_entry ("dead", "rtsp://127.0.0.1:9/nothing");
  return config_text (cameras);
}

// Replaces the file in one step, so that a reload never reads half of it.
void
write_atomically (const std::string &path, const std::string &text)
{
  ASSERT_TRUE (g_file_set_contents (path.c_str (), text.c_str (), -1, nullptr));
}

// Cameras added, removed and changed by a SIGHUP every 100 ms while raw
// clients DESCRIBE, SETUP and PLAY them (and wait for on-demand cameras and
// for one that never has video): camrelay neither crashes nor reports a
// GLib CRITICAL, still serves afterwards, and stops within 5 s on SIGTERM.
TEST (LauncherReload, SighupStormWhileClientsPlay)
{
  constexpr int CLIENTS = 20;
  const std::vector<std::string> mounts{"keep", "c0", "c1", "c2", "od0", "od1", "dead"};
  const std::string path = write_config (storm_config (1));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("keep: connecting -> streaming", 20s), "") << camrelay.all_output ();

  std::atomic<bool> storming{true};
  std::atomic<int> described{0}, played{0}, refused{0}, not_found{0}, other{0};
  // The first two clients only ever ask for "keep", which is always there
  // and streaming: they must be answered 200 every time, whatever the
  // others wait for.
  constexpr int KEEP_CLIENTS = 2;
  std::atomic<int> keep_failed{0};
  std::atomic<long> keep_slowest_us{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < CLIENTS; c++) {
    clients.emplace_back ([&, c] {
      std::mt19937 random (static_cast<unsigned> (c) * 7919u + 1u);
      while (storming) {
        const std::string &mount = c < KEEP_CLIENTS ? mounts[0] : mounts[random () % mounts.size ()];
        const auto asked = Clock::now ();
        RawRtsp client (port);
        if (!client.ok ())
          continue;
        // A client gives up after 2 s (a camera without video may keep it
        // waiting longer): the storm goes on with the next one.  A client
        // of "keep" waits 8 s (the main thread accepts connections between
        // reloads, which are slow under AddressSanitizer).
        client.send_text (client.request_text ("DESCRIBE", mount, {"Accept: application/sdp"}));
        const std::string answer = client.read_response (c < KEEP_CLIENTS ? 8s : 2s);
        if (c < KEEP_CLIENTS) {
          const long us = static_cast<long> (std::chrono::duration_cast<std::chrono::microseconds> (
              Clock::now () - asked).count ());
          long slowest = keep_slowest_us;
          while (us > slowest && !keep_slowest_us.compare_exchange_weak (slowest, us)) {
          }
          if (answer.find (" 200 ") == std::string::npos)
            keep_failed++;
        }
        if (answer.find (" 200 ") != std::string::npos) {
          described++;
          RawRtsp player (port);
          if (player.ok () && player.play (mount, true)) {
            played++;
            player.drain (std::chrono::milliseconds (100 + random () % 400));
          }
          if (random () % 2)
            player.abort ();
        } else if (answer.find (" 503 ") != std::string::npos) {
          refused++;
        } else if (answer.find (" 404 ") != std::string::npos) {
          not_found++;
        } else {
          other++;
        }
      }
    });
  }

  const auto end = Clock::now () + std::chrono::seconds (storm_seconds ());
  int reloads = 0;
  while (Clock::now () < end && !camrelay.exited ()) {
    write_atomically (path, storm_config (++reloads));
    camrelay.send_signal (SIGHUP);
    std::this_thread::sleep_for (100ms);  // the storm's own pace, not a synchronisation
  }
  storming = false;
  for (std::thread &t : clients)
    t.join ();
  std::printf ("%d reloads; %d DESCRIBE 200, %d played, %d 503, %d 404, %d other; "
      "\"keep\": %d not answered 200, slowest %.0f ms\n", reloads, described.load (),
      played.load (), refused.load (), not_found.load (), other.load (), keep_failed.load (),
      static_cast<double> (keep_slowest_us.load ()) / 1000.0);
  if (const char *log = g_getenv ("CAMRELAY_STORM_LOG"))
    g_file_set_contents (log, camrelay.all_output ().c_str (), -1, nullptr);
  ASSERT_FALSE (camrelay.exited ()) << "camrelay died during the storm\n" << tail_of (camrelay);

  // Settled on a last configuration (signals sent close together may make
  // one reload; "final" marks this one): it serves.
  write_atomically (path,
      storm_config (1) + camera_entry ("final", "test://final?width=160&height=120"));
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("camera final: added", 20s), "") << tail_of (camrelay);
  RawRtsp last (port);
  EXPECT_TRUE (last.play ("keep", true)) << tail_of (camrelay);
  EXPECT_GT (last.drain (500ms), 0) << tail_of (camrelay);
  EXPECT_GT (played.load (), 0);
  EXPECT_EQ (keep_failed.load (), 0) << "a client of a camera that stays was not served";
  EXPECT_EQ (camrelay.all_output ().find ("CRITICAL"), std::string::npos) << tail_of (camrelay);
  expect_clean_stop (camrelay, path);
}


// Clients wait in DESCRIBE for a camera that has no video yet; a reload
// removes that camera under them.  Each gets its answer as soon as the camera
// is gone (not after the whole wait), camrelay keeps serving the other camera
// and stops cleanly.  (Under AddressSanitizer this was a heap-use-after-free
// of the removed Camera, freed by the reload while the clients waited on it.)
TEST (LauncherReload, ReloadRemovesACameraClientsAreWaitingFor)
{
  constexpr int WAITING = 8;
  const std::string keep = camera_entry ("keep", "test://keep?width=160&height=120");
  const std::string path = write_config (
      config_text (keep + camera_entry ("dead", "rtsp://127.0.0.1:9/nothing")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("keep: connecting -> streaming", 20s), "") << camrelay.all_output ();

  std::vector<std::unique_ptr<RawRtsp>> waiting;
  for (int i = 0; i < WAITING; i++) {
    waiting.push_back (std::make_unique<RawRtsp> (port));
    ASSERT_TRUE (waiting.back ()->send_text (
        waiting.back ()->request_text ("DESCRIBE", "dead", {"Accept: application/sdp"})));
  }
  // Every one of them is waiting (none answered yet).
  std::this_thread::sleep_for (1s);  // they wait 10 s: nothing to synchronise on but time
  for (auto &client : waiting)
    ASSERT_EQ (client->read_response (0ms), "") << camrelay.all_output ();

  write_atomically (path, config_text (keep));
  const auto removed_at = Clock::now ();
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("camera dead: removed", 10s), "") << tail_of (camrelay);
  for (auto &client : waiting) {
    const std::string answer = client->read_response (5s);
    EXPECT_EQ (answer.rfind ("RTSP/1.0 503", 0), 0u) << answer << tail_of (camrelay);
  }
  const double seconds = std::chrono::duration<double> (Clock::now () - removed_at).count ();
  std::printf ("%d waiting clients answered %.2f s after the reload\n", WAITING, seconds);
  EXPECT_LT (seconds, 5.0);
  ASSERT_FALSE (camrelay.exited ()) << tail_of (camrelay);
  RawRtsp other (port);
  EXPECT_TRUE (other.play ("keep", true)) << tail_of (camrelay);
  expect_clean_stop (camrelay, path);
}

// A reload removes a camera that a client plays over TCP: the client's
// session goes with it, and so does its connection (the client sees the
// stream end at once).  Before, the session was only detached from its
// client and stayed in the server's pool, its transports still pointing at
// the client: the connection stayed open, and once the client went, the
// media's send thread called into the freed client (gst-rtsp-server's
// get_data_seq assertion seen in reload storms; here within a second).
TEST (LauncherReload, RemovedCameraEndsTheSessionsPlayingIt)
{
  const std::string keep = camera_entry ("keep", "test://keep?width=160&height=120");
  const std::string gone = camera_entry ("gone", "test://gone?width=160&height=120");
  const std::string path = write_config (config_text (keep + gone));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("gone: connecting -> streaming", 20s), "") << camrelay.all_output ();

  RawRtsp player (port);
  ASSERT_TRUE (player.play ("gone", true)) << camrelay.all_output ();
  ASSERT_GT (player.drain (300ms), 0);
  RawRtsp other (port);
  ASSERT_TRUE (other.play ("keep", true)) << camrelay.all_output ();

  write_atomically (path, config_text (keep));
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("camera gone: removed", 10s), "") << tail_of (camrelay);
  EXPECT_TRUE (player.wait_closed_by_server (5s))
      << "the client of a removed camera is still connected\n" << tail_of (camrelay);
  player.abort ();
  // The other camera's client goes on, and so does a new one (before, the
  // first packet sent after the removed camera's client went aborted
  // camrelay: get_data_seq: 'data_seq' should not be NULL).
  EXPECT_GT (other.drain (500ms), 0) << tail_of (camrelay);
  RawRtsp next (port);
  EXPECT_TRUE (next.play ("keep", true)) << tail_of (camrelay);
  EXPECT_GT (next.drain (1s), 0) << tail_of (camrelay);
  ASSERT_FALSE (camrelay.exited ()) << tail_of (camrelay);
  expect_clean_stop (camrelay, path);
}

}  // namespace
