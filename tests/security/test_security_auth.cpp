// Attacks on the launcher's RTSP authentication, against the real camrelay
// binary: Digest across a reload, work before authentication, session
// hijacking, log forging and password guessing (docs/security.md).
#include <csignal>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "launcher_test_util.h"
#include "security/security_wire.h"

namespace {

using namespace camrelay::launcher_test;
using namespace camrelay::security_test;

std::string
users_entry (const std::string &name, const std::string &password)
{
  return "[[users]]\nname = \"" + name + "\"\npassword = \"" + password + "\"\n\n";
}

[[maybe_unused]] std::string
basic (const std::string &credentials)
{
  gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (credentials.data ()),
      credentials.size ());
  std::string header = std::string ("Authorization: Basic ") + encoded;
  g_free (encoded);
  return header;
}

// A Digest client's state: the server's realm and nonce from a 401.
struct DigestClient {
  std::string user, password, realm, nonce;

  bool take_challenge (const RtspProbe::Response &response)
  {
    for (const std::string &h : response.headers)
      if (h.rfind ("WWW-Authenticate: Digest", 0) == 0) {
        realm = digest_param (h, "realm");
        nonce = digest_param (h, "nonce");
      }
    return !realm.empty () && !nonce.empty ();
  }

  // RFC 2069's response, as gst-rtsp-server checks it; without its CRLF.
  std::string header (const std::string &method, const std::string &url) const
  {
    const std::string line = digest (user, password, realm, nonce, method, url);
    return line.substr (0, line.size () - 2);
  }
};

// A Digest client in the middle of DESCRIBE -> SETUP when [[users]] is
// reloaded with a user added: its nonce stays valid, its SETUP is answered.
TEST (SecurityAuth, DigestNonceSurvivesAReloadOfUnchangedUsers)
{
  const std::string camera = camera_entry ("front", "test://front?width=320&height=240");
  const std::string path = write_config (config_text (users_entry ("alice", "wonder") + camera));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");

  RtspProbe probe (port);
  DigestClient digest{"alice", "wonder", "", ""};
  RtspProbe::Response answer = probe.request ("DESCRIBE", "front", {"Accept: application/sdp"});
  ASSERT_EQ (answer.status, "RTSP/1.0 401 Unauthorized");
  ASSERT_TRUE (digest.take_challenge (answer));
  answer = probe.request ("DESCRIBE", "front",
      {"Accept: application/sdp", digest.header ("DESCRIBE", rtsp_url (port, "front"))});
  ASSERT_EQ (answer.status, "RTSP/1.0 200 OK") << camrelay.all_output ();

  std::ofstream (path) << config_text (
      users_entry ("alice", "wonder") + users_entry ("bob", "builder") + camera);
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("reload: 2 user(s)", 10s), "") << camrelay.all_output ();

  const std::string setup_url = rtsp_url (port, "front/stream=0");
  answer = probe.request ("SETUP", setup_url,
      {"Transport: RTP/AVP/TCP;unicast;interleaved=0-1", digest.header ("SETUP", setup_url)});
  EXPECT_EQ (answer.status, "RTSP/1.0 200 OK") << camrelay.all_output ();
  expect_clean_stop (camrelay, path);
}

// Without credentials nothing happens before the 401: an on-demand camera
// restricted to alice stays stopped, and an unknown mount and a restricted
// one get the same answer.
TEST (SecurityAuth, NothingHappensBeforeAuthentication)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + users_entry ("bob", "builder")
      + camera_entry ("priv", "test://priv?width=320&height=240")
      + "on_demand = true\nusers = [\"alice\"]\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();

  Wire anonymous (port);
  const auto asked = Clock::now ();
  EXPECT_EQ (status_of (anonymous.ask ("DESCRIBE", "priv")), 401);
  EXPECT_LT (Clock::now () - asked, 1s) << "the 401 waited for something";
  EXPECT_EQ (status_of (anonymous.ask ("DESCRIBE", "nothing")), 401);
  EXPECT_EQ (status_of (anonymous.ask ("SETUP", "priv/stream=0",
                {"Transport: RTP/AVP/TCP;unicast;interleaved=0-1"})), 401);
  EXPECT_EQ (status_of (anonymous.ask ("OPTIONS", "priv")), 200);
  // An authenticated user not permitted: the same 404 as an unknown mount.
  EXPECT_EQ (status_of (anonymous.ask ("DESCRIBE", "priv", {basic ("bob:builder")})), 404);
  EXPECT_EQ (status_of (anonymous.ask ("DESCRIBE", "nothing", {basic ("bob:builder")})), 404);
  int status = 0;
  const std::string cameras = http_get (camrelay.http_port (), "/api/cameras", status);
  EXPECT_NE (cameras.find ("\"stopped\""), std::string::npos) << cameras;
  EXPECT_EQ (camrelay.wait_line ("priv: connecting for a client", 500ms), "")
      << "an unauthenticated DESCRIBE started the camera";

  // The permitted user starts it.
  EXPECT_EQ (status_of (anonymous.ask ("DESCRIBE", "priv", {basic ("alice:wonder")})), 200);
  EXPECT_NE (camrelay.wait_line ("priv: connecting for a client", 5s), "");
  expect_clean_stop (camrelay, path);
}

// A playing viewer's keep-alive is answered within 200 ms while 64 clients
// ask for a camera that is down: first unauthenticated, then authenticated
// (each waits on a worker thread of its own: server.threads = 0).
TEST (SecurityAuth, KeepAliveAnsweredWhileManyWaitForADownCamera)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + camera_entry ("front", "test://front?width=320&height=240")
      + camera_entry ("down", "rtsp://127.0.0.1:9/none") + "fallback = \"none\"\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");
  const std::vector<std::string> alice{basic ("alice:wonder")};
  Wire viewer (port);
  const std::string session = viewer.play ("front", alice);
  ASSERT_NE (session, "") << camrelay.all_output ();

  auto keep_alive_ms = [&] {
    std::vector<std::string> headers = alice;
    headers.push_back ("Session: " + session);
    const auto asked = Clock::now ();
    EXPECT_EQ (status_of (viewer.ask ("GET_PARAMETER", "front", headers)), 200);
    return std::chrono::duration_cast<std::chrono::milliseconds> (Clock::now () - asked).count ();
  };
  for (const bool authenticated : {false, true}) {
    std::vector<std::unique_ptr<Wire>> crowd;
    for (int i = 0; i < 64; i++) {
      crowd.push_back (std::make_unique<Wire> (port));
      std::vector<std::string> headers{"Accept: application/sdp"};
      if (authenticated)
        headers.push_back (basic ("alice:wonder"));
      EXPECT_TRUE (crowd.back ()->send_request ("DESCRIBE", "down", headers));
    }
    if (!authenticated) {
      for (auto &c : crowd)
        EXPECT_EQ (status_of (c->read_answer (5s)), 401);
    }
    EXPECT_LT (keep_alive_ms (), 200) << (authenticated ? "authenticated" : "unauthenticated");
    Wire fresh (port);
    const auto asked = Clock::now ();
    EXPECT_EQ (status_of (fresh.ask ("OPTIONS", "front")), 200);
    EXPECT_LT (Clock::now () - asked, 200ms);
  }
  EXPECT_GT (viewer.frames_after (500ms), 0);
  expect_clean_stop (camrelay, path);
}

// Requests that name a session, from someone other than its owner.
const std::vector<std::pair<std::string, std::string>> kSessionRequests = {
    {"PAUSE", "priv"}, {"PLAY", "priv"}, {"TEARDOWN", "priv"}, {"GET_PARAMETER", "priv"},
    {"SET_PARAMETER", "priv"}, {"SETUP", "priv/stream=0"}, {"OPTIONS", "priv"}};

std::vector<std::string>
naming (const std::string &method, const std::string &session, std::vector<std::string> headers)
{
  headers.push_back ("Session: " + session);
  if (method == "SETUP")
    headers.push_back ("Transport: RTP/AVP/TCP;unicast;interleaved=2-3");
  if (method == "PLAY")
    headers.push_back ("Range: npt=0-");
  return headers;
}

// Alice plays /priv over TCP.  Connections without credentials, and with
// bob's, send every request naming her session: each gets 454, then
// disconnects; her video keeps flowing through all of it.
TEST (SecurityAuth, SessionOfAnotherUserIsNotFound)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + users_entry ("bob", "builder")
      + camera_entry ("priv", "test://priv?width=320&height=240") + "users = [\"alice\"]\n\n"
      + camera_entry ("front", "test://front?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("priv: connecting -> streaming", 20s), "");
  Wire alice (port);
  const std::string session = alice.play ("priv", {basic ("alice:wonder")});
  ASSERT_NE (session, "") << camrelay.all_output ();
  ASSERT_GT (alice.frames_after (500ms), 0);

  for (const std::vector<std::string> &credentials :
      {std::vector<std::string>{}, std::vector<std::string>{basic ("bob:builder")}}) {
    for (const auto &[method, target] : kSessionRequests) {
      Wire intruder (port);
      EXPECT_EQ (status_of (intruder.ask (method, target,
                    naming (method, session, credentials))), 454)
          << method << (credentials.empty () ? " without credentials" : " as bob");
      const long before = alice.frames_after (0ms);
      EXPECT_GT (alice.frames_after (300ms), before) << "alice's video stopped after " << method;
    }
  }
  // Bob may play /front, but not into alice's session.
  Wire bob (port);
  EXPECT_EQ (status_of (bob.ask ("SETUP", "front/stream=0",
                naming ("SETUP", session, {basic ("bob:builder")}))), 454);
  const long before = alice.frames_after (0ms);
  EXPECT_GT (alice.frames_after (1s), before + 10) << "alice's video stopped";
  EXPECT_NE (camrelay.wait_line ("names a session that is not its own", 5s).find ("client 127.0.0.1"),
      std::string::npos);
  expect_clean_stop (camrelay, path);
}

// Alice's own second connection, with her credentials, controls her
// session; closing it leaves her session playing.
TEST (SecurityAuth, OwnerControlsHerSessionFromAnotherConnection)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + camera_entry ("priv", "test://priv?width=320&height=240") + "users = [\"alice\"]\n\n"));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("priv: connecting -> streaming", 20s), "");
  Wire alice (port);
  const std::vector<std::string> credentials{basic ("alice:wonder")};
  const std::string session = alice.play ("priv", credentials);
  ASSERT_NE (session, "") << camrelay.all_output ();
  {
    Wire second (port);
    for (const char *method : {"GET_PARAMETER", "PAUSE", "PLAY"})
      EXPECT_EQ (status_of (second.ask (method, "priv",
                    naming (method, session, credentials))), 200) << method;
    const long before = alice.frames_after (0ms);
    EXPECT_GT (alice.frames_after (1s), before + 10) << "alice's video did not resume";
  }
  // The second connection closed: the session's streams stay.
  const long before = alice.frames_after (500ms);
  EXPECT_GT (alice.frames_after (1s), before + 10) << "closing her other connection stopped it";
  expect_clean_stop (camrelay, path);
}

// Without [[users]] a session belongs to the connection that made it.
TEST (SecurityAuth, AnonymousSessionBelongsToItsConnection)
{
  const std::string path = write_config (config_text (
      camera_entry ("priv", "test://priv?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("priv: connecting -> streaming", 20s), "");
  Wire owner (port);
  const std::string session = owner.play ("priv", {});
  ASSERT_NE (session, "") << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("client 127.0.0.1: plays /priv", 5s), "")
      << "an anonymous client is named as a user\n" << camrelay.all_output ();
  for (const auto &[method, target] : kSessionRequests) {
    Wire intruder (port);
    EXPECT_EQ (status_of (intruder.ask (method, target, naming (method, session, {}))),
        454) << method;
    const long before = owner.frames_after (0ms);
    EXPECT_GT (owner.frames_after (300ms), before) << "the owner's video stopped after " << method;
  }
  EXPECT_EQ (status_of (owner.ask ("GET_PARAMETER", "priv",
                naming ("GET_PARAMETER", session, {}))), 200);
  const long before = owner.frames_after (0ms);
  EXPECT_GT (owner.frames_after (1s), before + 10);
  expect_clean_stop (camrelay, path);
}

// User names that try to forge log lines: a CR LF followed by a line of
// its own, an escape sequence, 3 000 characters.  Each failed login gives
// one line, with the name quoted, escaped and cut.
TEST (SecurityAuth, ClientValuesCannotForgeLogLines)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + camera_entry ("front", "test://front?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  const std::vector<std::string> names = {"evil\r\nclient 10.0.0.99: forged",
      "\x1b[2J\x1b[31mred\x1b[0m", std::string (3000, 'x'), "quote\"back\\slash"};
  Wire client (port);
  for (const std::string &name : names)
    EXPECT_EQ (status_of (client.ask ("DESCRIBE", "front",
                  {basic (name + ":guess")})), 401);
  ASSERT_TRUE (camrelay.wait_count ("authentication failed for user", names.size (), 5s))
      << camrelay.all_output ();
  const std::string output = camrelay.all_output ();
  std::istringstream lines (output);
  for (std::string line; std::getline (lines, line);) {
    // GStreamer's own debug output (GST_DEBUG of the test run) is not camrelay's log.
    if (g_regex_match_simple ("^[0-9]+:[0-9]{2}:[0-9]{2}\\.[0-9]+ ", line.c_str (),
            G_REGEX_DEFAULT, G_REGEX_MATCH_DEFAULT))
      continue;
    EXPECT_NE (line.rfind ("client 10.0.0.99", 0), 0u) << "forged line: " << line;
    EXPECT_LT (line.size (), 400u) << "a client's value was logged whole: " << line;
    for (const char c : line)
      EXPECT_TRUE (static_cast<unsigned char> (c) >= 0x20 && c != 0x7f)
          << "raw control byte " << int (c) << " in the log line " << line;
  }
  // Basic's user name ends at the first ':'.
  EXPECT_NE (output.find ("user \"evil\\x0d\\x0aclient 10.0.0.99\""), std::string::npos) << output;
  EXPECT_NE (output.find ("\"\\x1b[2J"), std::string::npos) << output;
  EXPECT_NE (output.find ("...(3000 bytes)"), std::string::npos) << output;
  EXPECT_NE (output.find ("\"quote\\\"back\\\\slash\""), std::string::npos) << output;
  expect_clean_stop (camrelay, path);
}

// Ten wrong passwords from 127.0.0.1: its credentials are refused for a
// while, even right ones (logged once); alice from 127.0.0.2 (loopback too)
// still gets in.
TEST (SecurityAuth, GuessingIsRefusedPerAddress)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + camera_entry ("front", "test://front?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  ASSERT_NE (camrelay.wait_line ("front: connecting -> streaming", 20s), "");
  Wire guesser (port);
  for (int i = 0; i < 10; i++)
    EXPECT_EQ (status_of (guesser.ask ("DESCRIBE", "front",
                  {basic ("alice:guess" + std::to_string (i))})), 401);
  ASSERT_NE (camrelay.wait_line ("10 failed logins within 60 s", 5s), "") << camrelay.all_output ();
  for (int i = 0; i < 5; i++)
    EXPECT_EQ (status_of (guesser.ask ("DESCRIBE", "front",
                  {basic ("alice:wonder")})), 401) << "a refused address got in";
  Wire elsewhere (port, "127.0.0.2");
  ASSERT_TRUE (elsewhere.ok ());
  EXPECT_EQ (status_of (elsewhere.ask ("DESCRIBE", "front",
                {basic ("alice:wonder")})), 200) << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("client 127.0.0.2: connected", 5s), "");
  EXPECT_TRUE (camrelay.wait_count ("failed logins within", 1, 0ms));
  EXPECT_FALSE (camrelay.wait_count ("failed logins within", 2, 0ms)) << "logged more than once";
  EXPECT_FALSE (camrelay.wait_count ("authentication failed", 11, 0ms))
      << "refused attempts were checked";
  expect_clean_stop (camrelay, path);
}

// Lines logged at once by many threads (the main thread's "connected",
// the workers' "disconnected" and failed logins) each stay a line of
// their own.
TEST (SecurityAuth, ConcurrentLogLinesNeverMerge)
{
  const std::string path = write_config (config_text (users_entry ("alice", "wonder")
      + camera_entry ("front", "test://front?width=320&height=240")));
  Launcher camrelay ({"-c", path});
  const int port = camrelay.rtsp_port ();
  ASSERT_GT (port, 0) << camrelay.all_output ();
  constexpr int kThreads = 16, kRounds = 10;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++)
    threads.emplace_back ([port] {
      for (int round = 0; round < kRounds; round++) {
        Wire client (port);
        client.ask ("DESCRIBE", "front", {basic ("mallory:guess")});
      }
    });
  for (std::thread &t : threads)
    t.join ();
  ASSERT_TRUE (camrelay.wait_count ("disconnected", kThreads * kRounds, 20s))
      << camrelay.all_output ();
  std::istringstream lines (camrelay.all_output ());
  for (std::string line; std::getline (lines, line);) {
    const size_t first = line.find ("client 127.0.0.1");
    EXPECT_TRUE (first == std::string::npos
        || line.find ("client 127.0.0.1", first + 1) == std::string::npos)
        << "merged lines: " << line;
  }
  expect_clean_stop (camrelay, path);
}

}  // namespace
