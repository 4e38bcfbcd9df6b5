// Attacks on what one peer can make the real camrelay spend: huge request
// bodies, many connections, connections that never authenticate, and the
// same against its HTTP server.  See docs/security.md.
#include "launcher_test_util.h"
#include "security/security_wire.h"

using namespace camrelay::launcher_test;
using namespace camrelay::security_test;

namespace {

constexpr uint64_t MB = 1024 * 1024;

// camrelay serving the synthetic camera "cam", with `server_keys` added to
// [server]; waits until it listens.
struct Relay {
  std::string config;
  std::unique_ptr<Launcher> camrelay;
  int port = 0;
  int http_port = 0;

  explicit Relay (const std::string &server_keys = "", const std::string &http_keys = "")
  {
    config = write_config (text (server_keys, http_keys));
    camrelay = std::make_unique<Launcher> (std::vector<std::string>{"-c", config});
    port = camrelay->rtsp_port ();
    http_port = camrelay->http_port ();
  }
  ~Relay () { expect_clean_stop (*camrelay, config); }

  static std::string text (const std::string &server_keys, const std::string &http_keys)
  {
    std::string text = config_text (camera_entry ("cam", "test://cam"));
    text.insert (text.find ("\n\n[[cameras]]"), "\n" + http_keys);
    text.insert (text.find ("\n\n[http]"), "\n" + server_keys);
    return text;
  }

  // Writes the configuration again with these keys and has camrelay reload it.
  bool reload (const std::string &server_keys, const std::string &http_keys = "")
  {
    std::ofstream (config) << text (server_keys, http_keys);
    camrelay->send_signal (SIGHUP);
    return camrelay->wait_count ("reload: 0 camera(s) added", ++reloads, 10s);
  }

  size_t reloads = 0;

  // One OPTIONS on a new connection from `from`: its status line.
  std::string options (const char *from = "127.0.0.1")
  {
    Wire peer (port, from);
    if (!peer.send_all (rtsp_request (port, "OPTIONS", "cam", 1)))
      return "send failed";
    std::string answer = peer.read_until ("\r\n\r\n", 10s);
    return answer.substr (0, answer.find ("\r\n"));
  }

  // GET /metrics: the HTTP status, 0 without an answer.
  int metrics ()
  {
    int status = 0;
    std::string out = http_get (http_port, "/metrics", status);
    return std::atoi (out.c_str () + (out.rfind ('\n') == std::string::npos ? 0 : out.rfind ('\n') + 1));
  }
};

// SET_PARAMETER announcing a 4 GB body, then sending hundreds of MB of it on
// two connections: camrelay closes each connection instead of reading the
// body, its memory does not grow, and other clients are served.
TEST (SecurityBounds, HugeRtspBodyIsRefusedWithoutReadingIt)
{
  Relay relay;
  ASSERT_GT (relay.port, 0) << relay.camrelay->all_output ();
  ASSERT_EQ (relay.options (), "RTSP/1.0 200 OK");
  const long idle = rss_kb (relay.camrelay->pid ());
  ASSERT_GT (idle, 0);

  constexpr uint64_t BODY_PER_CONNECTION = 300 * MB;
  std::vector<std::unique_ptr<Wire>> peers;
  for (int i = 0; i < 2; i++) {
    peers.push_back (std::make_unique<Wire> (relay.port));
    ASSERT_TRUE (peers.back ()->send_all (rtsp_request (relay.port, "SET_PARAMETER", "cam", 1,
        {"Content-Type: text/parameters", "Content-Length: 4000000000"})));
  }
  const std::string chunk (1 * MB, 'x');
  uint64_t sent[2] = {0, 0};
  long peak = idle;
  bool failed[2] = {false, false};
  const auto deadline = Clock::now () + 60s;
  while ((!failed[0] || !failed[1]) && Clock::now () < deadline
      && (sent[0] < BODY_PER_CONNECTION || sent[1] < BODY_PER_CONNECTION)) {
    bool progress = false;
    for (int i = 0; i < 2; i++) {
      if (failed[i] || sent[i] >= BODY_PER_CONNECTION)
        continue;
      long n = peers[i]->send_some (chunk.data (), chunk.size (), 20ms);
      if (n < 0)
        failed[i] = true;
      else
        sent[i] += static_cast<uint64_t> (n);
      progress = progress || n > 0;
    }
    peak = std::max (peak, rss_kb (relay.camrelay->pid ()));
    // Both connections full and closed by the server: nothing more to send.
    if (!progress && peers[0]->closed_within (20ms) && peers[1]->closed_within (20ms))
      break;
  }
  peak = std::max (peak, rss_kb (relay.camrelay->pid ()));
  for (int i = 0; i < 2; i++) {
    EXPECT_TRUE (peers[i]->closed_within (10s))
        << "connection " << i << " still open after " << sent[i] / MB << " MB of body";
    EXPECT_LT (sent[i], BODY_PER_CONNECTION) << "connection " << i << ": the whole body was taken";
    const std::string &answer = peers[i]->received ();
    if (!answer.empty ()) {
      EXPECT_EQ (answer.rfind ("RTSP/1.0 413", 0), 0u) << answer;
    }
  }
  EXPECT_LT (peak, idle + RSS_SLACK_KB) << "idle " << idle / 1024 << " MB, peak " << peak / 1024
      << " MB";
  EXPECT_EQ (relay.options (), "RTSP/1.0 200 OK");
  RtspProbe probe (relay.port);
  EXPECT_EQ (probe.describe ("cam"), "RTSP/1.0 200 OK");
}

// Whether a new connection from `from` is closed by camrelay without a
// word, even after sending a request.
bool
refused (int port, const char *from)
{
  Wire peer (port, from);
  if (!peer.ok ())
    return false;
  peer.send_all (rtsp_request (port, "OPTIONS", "cam", 1));
  return peer.closed_within (5s) && peer.received ().empty ();
}

// Opens a connection from `from` and has one OPTIONS answered on it, so that
// camrelay has surely counted it.
std::unique_ptr<Wire>
admitted (int port, const char *from)
{
  auto peer = std::make_unique<Wire> (port, from);
  peer->send_all (rtsp_request (port, "OPTIONS", "cam", 1));
  EXPECT_EQ (peer->read_until ("\r\n\r\n", 10s).rfind ("RTSP/1.0 200 OK", 0), 0u)
      << "from " << from << ": " << peer->received ();
  return peer;
}

// Over server.max_connections_per_ip, a connection from that address is
// closed at once, unanswered; another address is served; a place given back
// is taken again.  Refusals are logged once per period, with a count.
TEST (SecurityBounds, ConnectionsPerAddressAreLimited)
{
  constexpr int LIMIT = 3;
  Relay relay ("max_connections_per_ip = " + std::to_string (LIMIT));
  ASSERT_GT (relay.port, 0) << relay.camrelay->all_output ();
  std::vector<std::unique_ptr<Wire>> open;
  for (int i = 0; i < LIMIT; i++)
    open.push_back (admitted (relay.port, "127.0.0.1"));
  for (int i = 0; i < 5; i++)
    EXPECT_TRUE (refused (relay.port, "127.0.0.1")) << "connection " << LIMIT + 1 + i;
  EXPECT_EQ (relay.options ("127.0.0.2"), "RTSP/1.0 200 OK");
  for (auto &peer : open)  // still served
    EXPECT_TRUE (peer->send_all (rtsp_request (relay.port, "OPTIONS", "cam", 2)));
  for (auto &peer : open)
    EXPECT_NE (peer->read_until ("CSeq: 2", 10s).find ("CSeq: 2"), std::string::npos);

  // One goes: its place is free once camrelay has seen it close.
  open.pop_back ();
  bool accepted = false;
  for (int attempt = 0; attempt < 50 && !accepted; attempt++)
    accepted = relay.options () == "RTSP/1.0 200 OK";
  EXPECT_TRUE (accepted) << relay.camrelay->all_output ();

  const std::string logged = relay.camrelay->wait_line ("client 127.0.0.1: refused a connection", 5s);
  EXPECT_NE (logged.find ("3 connections from this address already (server.max_connections_per_ip)"),
      std::string::npos) << logged;
  EXPECT_FALSE (relay.camrelay->wait_count ("client 127.0.0.1: refused a connection", 2, 0ms))
      << relay.camrelay->all_output ();
}

// Over server.max_connections, any new connection is closed at once.
TEST (SecurityBounds, ConnectionsInAllAreLimited)
{
  Relay relay ("max_connections = 2\nmax_connections_per_ip = 0");
  ASSERT_GT (relay.port, 0) << relay.camrelay->all_output ();
  auto first = admitted (relay.port, "127.0.0.1");
  auto second = admitted (relay.port, "127.0.0.2");
  EXPECT_TRUE (refused (relay.port, "127.0.0.3"));
  EXPECT_NE (relay.camrelay->wait_line ("client 127.0.0.3: refused a connection", 5s)
                 .find ("2 connections in all already (server.max_connections)"),
      std::string::npos) << relay.camrelay->all_output ();
  second.reset ();
  bool accepted = false;
  for (int attempt = 0; attempt < 50 && !accepted; attempt++)
    accepted = relay.options ("127.0.0.3") == "RTSP/1.0 200 OK";
  EXPECT_TRUE (accepted) << relay.camrelay->all_output ();
}

// The limits apply on reload, to the connections made from then on.
TEST (SecurityBounds, ConnectionLimitsApplyOnReload)
{
  Relay relay ("max_connections_per_ip = 1");
  ASSERT_GT (relay.port, 0) << relay.camrelay->all_output ();
  auto first = admitted (relay.port, "127.0.0.1");
  EXPECT_TRUE (refused (relay.port, "127.0.0.1"));
  ASSERT_TRUE (relay.reload ("max_connections_per_ip = 2")) << relay.camrelay->all_output ();
  auto second = admitted (relay.port, "127.0.0.1");
  EXPECT_TRUE (refused (relay.port, "127.0.0.1"));
  ASSERT_TRUE (relay.reload ("max_connections_per_ip = 0\nmax_connections = 3"))
      << relay.camrelay->all_output ();
  auto third = admitted (relay.port, "127.0.0.1");
  EXPECT_TRUE (refused (relay.port, "127.0.0.2"));
}

// A connection with no successful answer to anything but OPTIONS within
// server.login_timeout is closed; one that plays is not.
TEST (SecurityBounds, ConnectionsThatNeverLogInAreClosed)
{
  constexpr auto LOGIN_TIMEOUT = 2s;
  Relay relay ("login_timeout = 2");
  ASSERT_GT (relay.port, 0) << relay.camrelay->all_output ();
  RawRtsp player (relay.port);
  ASSERT_TRUE (player.play ("cam", true)) << relay.camrelay->all_output ();
  const auto start = Clock::now ();
  Wire idle (relay.port);
  Wire asking (relay.port);
  ASSERT_TRUE (idle.ok () && asking.ok ());

  // The one asking OPTIONS every 500 ms is answered until it is cut.
  const auto limit = start + LOGIN_TIMEOUT + 4s;
  int cseq = 0;
  bool asking_closed = false;
  while (!asking_closed && Clock::now () < limit) {
    if (!asking.send_all (rtsp_request (relay.port, "OPTIONS", "cam", ++cseq)))
      break;
    asking_closed = asking.closed_within (500ms);
  }
  const auto asking_cut = Clock::now () - start;
  EXPECT_TRUE (asking_closed || asking.closed_within (0ms))
      << "still open after " << cseq << " OPTIONS";
  EXPECT_GE (asking_cut, LOGIN_TIMEOUT - 100ms) << "cut before its time";
  EXPECT_NE (asking.received ().find ("CSeq: 2\r\n"), std::string::npos) << asking.received ();
  EXPECT_TRUE (idle.closed_within (std::chrono::duration_cast<std::chrono::milliseconds> (
      limit - Clock::now ())));
  EXPECT_NE (relay.camrelay->wait_line ("(server.login_timeout)", 1s).find ("client 127.0.0.1: closed"),
      std::string::npos) << relay.camrelay->all_output ();

  // The player still gets video, on its connection still open.
  EXPECT_GT (player.drain (1s), 0) << relay.camrelay->all_output ();
}

// POST /metrics with a 200 MB body: 413 at once, the body never taken in.
TEST (SecurityBounds, HugeHttpBodyIsRefusedWithoutReadingIt)
{
  Relay relay;
  ASSERT_GT (relay.http_port, 0) << relay.camrelay->all_output ();
  ASSERT_EQ (relay.metrics (), 200);
  const long idle = rss_kb (relay.camrelay->pid ());

  constexpr uint64_t BODY = 200 * MB;
  Wire peer (relay.http_port);
  const auto start = Clock::now ();
  ASSERT_TRUE (peer.send_all ("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
      + std::to_string (BODY) + "\r\nContent-Type: application/octet-stream\r\n\r\n"));
  const std::string chunk (1 * MB, 'x');
  uint64_t sent = 0;
  long peak = idle;
  while (sent < BODY && Clock::now () < start + 60s) {
    long n = peer.send_some (chunk.data (), chunk.size (), 20ms);
    if (n < 0)
      break;
    sent += static_cast<uint64_t> (n);
    peak = std::max (peak, rss_kb (relay.camrelay->pid ()));
    if (n == 0 && peer.closed_within (20ms))
      break;
  }
  const std::string answer = peer.read_until ("\r\n\r\n", 5s);
  const auto answered = Clock::now () - start;
  peak = std::max (peak, rss_kb (relay.camrelay->pid ()));
  EXPECT_EQ (answer.rfind ("HTTP/1.1 413", 0), 0u) << answer;
  EXPECT_LT (answered, 5s);
  EXPECT_LT (sent, BODY) << "the whole body was taken";
  EXPECT_TRUE (peer.closed_within (5s));
  EXPECT_LT (peak, idle + RSS_SLACK_KB) << "idle " << idle / 1024 << " MB, peak " << peak / 1024
      << " MB";
  EXPECT_EQ (relay.metrics (), 200);
}

// A chunked request body (its size unknown) is refused the same way.
TEST (SecurityBounds, ChunkedHttpBodyIsRefused)
{
  Relay relay;
  ASSERT_GT (relay.http_port, 0) << relay.camrelay->all_output ();
  Wire peer (relay.http_port);
  ASSERT_TRUE (peer.send_all ("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"));
  EXPECT_EQ (peer.read_until ("\r\n\r\n", 5s).rfind ("HTTP/1.1 413", 0), 0u) << peer.received ();
  EXPECT_TRUE (peer.closed_within (5s));
  EXPECT_NE (relay.camrelay->wait_line ("refused a request with a body of unknown size", 1s), "")
      << relay.camrelay->all_output ();
  EXPECT_EQ (relay.metrics (), 200);
}

// 500 connections to the HTTP port that send nothing are all closed within
// the idle timeout and a few seconds; /metrics answers meanwhile.
TEST (SecurityBounds, IdleHttpConnectionsAreClosed)
{
  constexpr auto IDLE_TIMEOUT = 10s;
  Relay relay;
  ASSERT_GT (relay.http_port, 0) << relay.camrelay->all_output ();
  std::vector<std::unique_ptr<Wire>> idle;
  for (int i = 0; i < 500; i++) {
    idle.push_back (std::make_unique<Wire> (relay.http_port));
    ASSERT_TRUE (idle.back ()->ok ()) << "connection " << i;
  }
  const auto connected = Clock::now ();
  EXPECT_EQ (relay.metrics (), 200);
  const auto deadline = connected + IDLE_TIMEOUT + 5s;
  int open = 0;
  for (auto &peer : idle) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (deadline - Clock::now ());
    if (!peer->closed_within (std::max (left, 0ms)))
      open++;
  }
  EXPECT_EQ (open, 0) << "still open " << IDLE_TIMEOUT.count () + 5 << " s after connecting";
  EXPECT_EQ (relay.metrics (), 200);
}

// Over http.max_connections a new HTTP connection is closed at once; a
// freed place is taken again.
TEST (SecurityBounds, HttpConnectionsAreLimited)
{
  Relay relay ("", "max_connections = 4");
  ASSERT_GT (relay.http_port, 0) << relay.camrelay->all_output ();
  std::vector<std::unique_ptr<Wire>> idle;
  for (int i = 0; i < 4; i++)
    idle.push_back (std::make_unique<Wire> (relay.http_port));
  Wire over (relay.http_port);
  over.send_all ("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_TRUE (over.closed_within (5s));
  EXPECT_EQ (over.received (), "");
  EXPECT_NE (relay.camrelay->wait_line ("(http.max_connections)", 5s).find ("HTTP client 127.0.0.1: refused"),
      std::string::npos) << relay.camrelay->all_output ();
  idle.pop_back ();
  bool answered = false;
  for (int attempt = 0; attempt < 20 && !answered; attempt++)
    answered = relay.metrics () == 200;
  EXPECT_TRUE (answered) << relay.camrelay->all_output ();
}

}  // namespace
