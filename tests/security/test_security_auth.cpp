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

namespace {

using namespace camrelay::launcher_test;

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

std::string
url_of (int port, const std::string &path)
{
  return "rtsp://127.0.0.1:" + std::to_string (port) + "/" + path;
}

// The value of `name`="..." in a Digest challenge, or "".
std::string
challenge_param (const std::string &challenge, const std::string &name)
{
  const size_t at = challenge.find (name + "=\"");
  if (at == std::string::npos)
    return "";
  const size_t begin = at + name.size () + 2;
  return challenge.substr (begin, challenge.find ('"', begin) - begin);
}

// A Digest client's state: the server's realm and nonce from a 401.
struct DigestClient {
  std::string user, password, realm, nonce;

  bool take_challenge (const RtspProbe::Response &response)
  {
    for (const std::string &h : response.headers)
      if (h.rfind ("WWW-Authenticate: Digest", 0) == 0) {
        realm = challenge_param (h, "realm");
        nonce = challenge_param (h, "nonce");
      }
    return !realm.empty () && !nonce.empty ();
  }

  std::string header (const std::string &method, const std::string &url) const
  {
    // RFC 2069's response, as gst-rtsp-server checks it.
    auto md5 = [] (const std::string &text) {
      gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_MD5, text.c_str (), -1);
      std::string result = hex;
      g_free (hex);
      return result;
    };
    const std::string response = md5 (md5 (user + ":" + realm + ":" + password) + ":" + nonce
        + ":" + md5 (method + ":" + url));
    return "Authorization: Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\""
        + nonce + "\", uri=\"" + url + "\", response=\"" + response + "\"";
  }
};

// An RTSP connection on a plain socket that reads answers and
// TCP-interleaved data ('$' frames, counted) as they come; from `source`
// (another loopback address) when given.  Every read is bounded by poll().
class Connection {
 public:
  explicit Connection (int port, const char *source = nullptr) : port_ (port)
  {
    fd_ = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    if (fd_ >= 0 && source) {
      inet_pton (AF_INET, source, &address.sin_addr);
      if (bind (fd_, reinterpret_cast<sockaddr *> (&address), sizeof (address)) != 0) {
        close (fd_);
        fd_ = -1;
      }
    }
    address.sin_port = htons (static_cast<uint16_t> (port));
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (fd_ >= 0 && connect (fd_, reinterpret_cast<sockaddr *> (&address), sizeof (address)) != 0) {
      close (fd_);
      fd_ = -1;
    }
  }
  ~Connection ()
  {
    if (fd_ >= 0)
      close (fd_);
  }
  Connection (const Connection &) = delete;
  Connection &operator= (const Connection &) = delete;

  bool ok () const { return fd_ >= 0; }

  bool send_request (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers = {})
  {
    std::string text = method + " " + url_of (port_, path) + " RTSP/1.0\r\nCSeq: "
        + std::to_string (++cseq_) + "\r\n";
    for (const std::string &h : headers)
      text += h + "\r\n";
    text += "\r\n";
    size_t done = 0;
    while (fd_ >= 0 && done < text.size ()) {
      ssize_t n = send (fd_, text.data () + done, text.size () - done, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      done += static_cast<size_t> (n);
    }
    return done == text.size ();
  }

  // The next answer (status line, headers and body), skipping interleaved
  // data; "" on timeout or close.
  std::string read_answer (std::chrono::milliseconds timeout = 15s)
  {
    const auto deadline = Clock::now () + timeout;
    while (true) {
      skip_frames ();
      const size_t end = buffer_.find ("\r\n\r\n");
      if (!buffer_.empty () && buffer_[0] != '$' && end != std::string::npos) {
        size_t body = 0;
        const size_t at = buffer_.find ("Content-Length:");
        if (at != std::string::npos && at < end)
          body = std::strtoul (buffer_.c_str () + at + 15, nullptr, 10);
        if (buffer_.size () >= end + 4 + body) {
          std::string answer = buffer_.substr (0, end + 4 + body);
          buffer_.erase (0, end + 4 + body);
          return answer;
        }
      }
      if (!fill (deadline))
        return "";
    }
  }

  std::string exchange (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers = {})
  {
    return send_request (method, path, headers) ? read_answer () : "";
  }

  // Interleaved frames received so far, reading for `duration` first.
  long frames_after (std::chrono::milliseconds duration)
  {
    const auto deadline = Clock::now () + duration;
    while (fill (deadline))
      skip_frames ();
    skip_frames ();
    return frames_;
  }

  // DESCRIBE, SETUP (TCP interleaved) and PLAY of `mount` with `headers`
  // (credentials); the session ID, or "" when one of them was not 200.
  std::string play (const std::string &mount, const std::vector<std::string> &headers)
  {
    std::vector<std::string> describe = headers;
    describe.push_back ("Accept: application/sdp");
    if (status_of (exchange ("DESCRIBE", mount, describe)) != 200)
      return "";
    std::vector<std::string> setup = headers;
    setup.push_back ("Transport: RTP/AVP/TCP;unicast;interleaved=0-1");
    const std::string answer = exchange ("SETUP", mount + "/stream=0", setup);
    const size_t at = answer.find ("Session: ");
    if (status_of (answer) != 200 || at == std::string::npos)
      return "";
    const std::string session = answer.substr (at + 9, answer.find_first_of (";\r", at + 9) - at - 9);
    std::vector<std::string> play = headers;
    play.push_back ("Session: " + session);
    play.push_back ("Range: npt=0-");
    return status_of (exchange ("PLAY", mount, play)) == 200 ? session : "";
  }

  static int status_of (const std::string &answer)
  {
    return answer.rfind ("RTSP/1.0 ", 0) == 0 ? std::atoi (answer.c_str () + 9) : 0;
  }

 private:
  // Reads what is there, waiting until `deadline`; false on timeout or close.
  bool fill (Clock::time_point deadline)
  {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (deadline - Clock::now ());
    if (fd_ < 0 || left.count () <= 0)
      return false;
    pollfd p = {fd_, POLLIN, 0};
    if (poll (&p, 1, static_cast<int> (left.count ())) <= 0)
      return false;
    char chunk[65536];
    const ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
    if (n <= 0) {
      close (fd_);
      fd_ = -1;
      return false;
    }
    buffer_.append (chunk, static_cast<size_t> (n));
    return true;
  }

  void skip_frames ()
  {
    while (buffer_.size () >= 4 && buffer_[0] == '$') {
      const size_t length = (static_cast<uint8_t> (buffer_[2]) << 8) | static_cast<uint8_t> (buffer_[3]);
      if (buffer_.size () < 4 + length)
        return;
      buffer_.erase (0, 4 + length);
      frames_++;
    }
  }

  int port_;
  int fd_ = -1;
  int cseq_ = 0;
  long frames_ = 0;
  std::string buffer_;
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
      {"Accept: application/sdp", digest.header ("DESCRIBE", url_of (port, "front"))});
  ASSERT_EQ (answer.status, "RTSP/1.0 200 OK") << camrelay.all_output ();

  std::ofstream (path) << config_text (
      users_entry ("alice", "wonder") + users_entry ("bob", "builder") + camera);
  camrelay.send_signal (SIGHUP);
  ASSERT_NE (camrelay.wait_line ("reload: 2 user(s)", 10s), "") << camrelay.all_output ();

  const std::string setup_url = url_of (port, "front/stream=0");
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

  Connection anonymous (port);
  const auto asked = Clock::now ();
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("DESCRIBE", "priv")), 401);
  EXPECT_LT (Clock::now () - asked, 1s) << "the 401 waited for something";
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("DESCRIBE", "nothing")), 401);
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("SETUP", "priv/stream=0",
                {"Transport: RTP/AVP/TCP;unicast;interleaved=0-1"})), 401);
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("OPTIONS", "priv")), 200);
  // An authenticated user not permitted: the same 404 as an unknown mount.
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("DESCRIBE", "priv", {basic ("bob:builder")})), 404);
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("DESCRIBE", "nothing", {basic ("bob:builder")})), 404);
  int status = 0;
  const std::string cameras = http_get (camrelay.http_port (), "/api/cameras", status);
  EXPECT_NE (cameras.find ("\"stopped\""), std::string::npos) << cameras;
  EXPECT_EQ (camrelay.wait_line ("priv: connecting for a client", 500ms), "")
      << "an unauthenticated DESCRIBE started the camera";

  // The permitted user starts it.
  EXPECT_EQ (Connection::status_of (anonymous.exchange ("DESCRIBE", "priv", {basic ("alice:wonder")})), 200);
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
  Connection viewer (port);
  const std::string session = viewer.play ("front", alice);
  ASSERT_NE (session, "") << camrelay.all_output ();

  auto keep_alive_ms = [&] {
    std::vector<std::string> headers = alice;
    headers.push_back ("Session: " + session);
    const auto asked = Clock::now ();
    EXPECT_EQ (Connection::status_of (viewer.exchange ("GET_PARAMETER", "front", headers)), 200);
    return std::chrono::duration_cast<std::chrono::milliseconds> (Clock::now () - asked).count ();
  };
  for (const bool authenticated : {false, true}) {
    std::vector<std::unique_ptr<Connection>> crowd;
    for (int i = 0; i < 64; i++) {
      crowd.push_back (std::make_unique<Connection> (port));
      std::vector<std::string> headers{"Accept: application/sdp"};
      if (authenticated)
        headers.push_back (basic ("alice:wonder"));
      EXPECT_TRUE (crowd.back ()->send_request ("DESCRIBE", "down", headers));
    }
    if (!authenticated) {
      for (auto &c : crowd)
        EXPECT_EQ (Connection::status_of (c->read_answer (5s)), 401);
    }
    EXPECT_LT (keep_alive_ms (), 200) << (authenticated ? "authenticated" : "unauthenticated");
    Connection fresh (port);
    const auto asked = Clock::now ();
    EXPECT_EQ (Connection::status_of (fresh.exchange ("OPTIONS", "front")), 200);
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
  Connection alice (port);
  const std::string session = alice.play ("priv", {basic ("alice:wonder")});
  ASSERT_NE (session, "") << camrelay.all_output ();
  ASSERT_GT (alice.frames_after (500ms), 0);

  for (const std::vector<std::string> &credentials :
      {std::vector<std::string>{}, std::vector<std::string>{basic ("bob:builder")}}) {
    for (const auto &[method, target] : kSessionRequests) {
      Connection intruder (port);
      EXPECT_EQ (Connection::status_of (intruder.exchange (method, target,
                    naming (method, session, credentials))), 454)
          << method << (credentials.empty () ? " without credentials" : " as bob");
      const long before = alice.frames_after (0ms);
      EXPECT_GT (alice.frames_after (300ms), before) << "alice's video stopped after " << method;
    }
  }
  // Bob may play /front, but not into alice's session.
  Connection bob (port);
  EXPECT_EQ (Connection::status_of (bob.exchange ("SETUP", "front/stream=0",
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
  Connection alice (port);
  const std::vector<std::string> credentials{basic ("alice:wonder")};
  const std::string session = alice.play ("priv", credentials);
  ASSERT_NE (session, "") << camrelay.all_output ();
  {
    Connection second (port);
    for (const char *method : {"GET_PARAMETER", "PAUSE", "PLAY"})
      EXPECT_EQ (Connection::status_of (second.exchange (method, "priv",
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
  Connection owner (port);
  const std::string session = owner.play ("priv", {});
  ASSERT_NE (session, "") << camrelay.all_output ();
  EXPECT_NE (camrelay.wait_line ("client 127.0.0.1: plays /priv", 5s), "")
      << "an anonymous client is named as a user\n" << camrelay.all_output ();
  for (const auto &[method, target] : kSessionRequests) {
    Connection intruder (port);
    EXPECT_EQ (Connection::status_of (intruder.exchange (method, target, naming (method, session, {}))),
        454) << method;
    const long before = owner.frames_after (0ms);
    EXPECT_GT (owner.frames_after (300ms), before) << "the owner's video stopped after " << method;
  }
  EXPECT_EQ (Connection::status_of (owner.exchange ("GET_PARAMETER", "priv",
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
  Connection client (port);
  for (const std::string &name : names)
    EXPECT_EQ (Connection::status_of (client.exchange ("DESCRIBE", "front",
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
  Connection guesser (port);
  for (int i = 0; i < 10; i++)
    EXPECT_EQ (Connection::status_of (guesser.exchange ("DESCRIBE", "front",
                  {basic ("alice:guess" + std::to_string (i))})), 401);
  ASSERT_NE (camrelay.wait_line ("10 failed logins within 60 s", 5s), "") << camrelay.all_output ();
  for (int i = 0; i < 5; i++)
    EXPECT_EQ (Connection::status_of (guesser.exchange ("DESCRIBE", "front",
                  {basic ("alice:wonder")})), 401) << "a refused address got in";
  Connection elsewhere (port, "127.0.0.2");
  ASSERT_TRUE (elsewhere.ok ());
  EXPECT_EQ (Connection::status_of (elsewhere.exchange ("DESCRIBE", "front",
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
        Connection client (port);
        client.exchange ("DESCRIBE", "front", {basic ("mallory:guess")});
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
