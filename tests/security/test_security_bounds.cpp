// Attacks on what one peer can make the real camrelay spend: huge request
// bodies, many connections, connections that never authenticate, and the
// same against its HTTP server.  See docs/security.md.
#include "launcher_test_util.h"

#include <fcntl.h>

#include <cerrno>

using namespace camrelay::launcher_test;

namespace {

// Resident memory of process `pid` in bytes (VmRSS), or 0.
uint64_t
resident_bytes (int pid)
{
  std::ifstream status ("/proc/" + std::to_string (pid) + "/status");
  std::string line;
  while (std::getline (status, line))
    if (line.rfind ("VmRSS:", 0) == 0)
      return std::strtoull (line.c_str () + 6, nullptr, 10) * 1024;
  return 0;
}

constexpr uint64_t MB = 1024 * 1024;
// How much camrelay may grow through an attack (issue 10: within 50 MB).
constexpr uint64_t RSS_SLACK = 50 * MB;

// A TCP connection to 127.0.0.1:port from `from` (any loopback address:
// 127.0.0.2 is a second client address on Linux), non-blocking; every
// wait is bounded by poll().
class Peer {
 public:
  Peer (int port, const char *from = "127.0.0.1")
  {
    fd_ = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      return;
    sockaddr_in local = {};
    local.sin_family = AF_INET;
    inet_pton (AF_INET, from, &local.sin_addr);
    sockaddr_in remote = {};
    remote.sin_family = AF_INET;
    remote.sin_port = htons (static_cast<uint16_t> (port));
    remote.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (bind (fd_, reinterpret_cast<sockaddr *> (&local), sizeof (local)) != 0
        || connect (fd_, reinterpret_cast<sockaddr *> (&remote), sizeof (remote)) != 0) {
      close (fd_);
      fd_ = -1;
      return;
    }
    fcntl (fd_, F_SETFL, fcntl (fd_, F_GETFL) | O_NONBLOCK);
  }
  ~Peer ()
  {
    if (fd_ >= 0)
      close (fd_);
  }
  Peer (const Peer &) = delete;
  Peer &operator= (const Peer &) = delete;

  bool ok () const { return fd_ >= 0; }

  // Sends what fits within `timeout`: the bytes sent, or -1 once the
  // connection failed (closed or reset by the server).
  long send_some (const char *data, size_t size, std::chrono::milliseconds timeout)
  {
    if (fd_ < 0 || failed_)
      return -1;
    pollfd p = {fd_, POLLOUT, 0};
    if (poll (&p, 1, static_cast<int> (timeout.count ())) <= 0)
      return 0;
    ssize_t n = send (fd_, data, size, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (n <= 0) {
      failed_ = true;
      return -1;
    }
    return n;
  }

  bool send_all (const std::string &text, std::chrono::milliseconds timeout = 5s)
  {
    const auto deadline = Clock::now () + timeout;
    size_t done = 0;
    while (done < text.size () && Clock::now () < deadline) {
      long n = send_some (text.data () + done, text.size () - done, 100ms);
      if (n < 0)
        return false;
      done += static_cast<size_t> (n);
    }
    return done == text.size ();
  }

  // Reads until `text` arrived, the server closed, or `timeout`; what came.
  std::string read_until (const std::string &text, std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    while (received_.find (text) == std::string::npos && !closed_ && Clock::now () < deadline)
      read_for (50ms);
    return received_;
  }

  // Whether the server closed the connection (EOF or reset) within `timeout`.
  bool closed_by_server (std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    while (!closed_ && Clock::now () < deadline)
      read_for (50ms);
    return closed_;
  }

  const std::string &received () const { return received_; }

 private:
  void read_for (std::chrono::milliseconds timeout)
  {
    pollfd p = {fd_, POLLIN, 0};
    if (fd_ < 0 || poll (&p, 1, static_cast<int> (timeout.count ())) <= 0)
      return;
    char chunk[4096];
    ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
    if (n > 0)
      received_.append (chunk, static_cast<size_t> (n));
    else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
      closed_ = true;
  }

  int fd_ = -1;
  bool failed_ = false;
  bool closed_ = false;
  std::string received_;
};

std::string
rtsp_request (int port, const std::string &method, const std::string &path, int cseq,
    const std::vector<std::string> &headers = {})
{
  std::string text = method + " rtsp://127.0.0.1:" + std::to_string (port) + "/" + path
      + " RTSP/1.0\r\nCSeq: " + std::to_string (cseq) + "\r\n";
  for (const std::string &h : headers)
    text += h + "\r\n";
  return text + "\r\n";
}

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
    Peer peer (port, from);
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
  const uint64_t idle = resident_bytes (relay.camrelay->pid ());
  ASSERT_GT (idle, 0u);

  constexpr uint64_t BODY_PER_CONNECTION = 300 * MB;
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 2; i++) {
    peers.push_back (std::make_unique<Peer> (relay.port));
    ASSERT_TRUE (peers.back ()->send_all (rtsp_request (relay.port, "SET_PARAMETER", "cam", 1,
        {"Content-Type: text/parameters", "Content-Length: 4000000000"})));
  }
  const std::string chunk (1 * MB, 'x');
  uint64_t sent[2] = {0, 0};
  uint64_t peak = idle;
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
    peak = std::max (peak, resident_bytes (relay.camrelay->pid ()));
    // Both connections full and closed by the server: nothing more to send.
    if (!progress && peers[0]->closed_by_server (20ms) && peers[1]->closed_by_server (20ms))
      break;
  }
  peak = std::max (peak, resident_bytes (relay.camrelay->pid ()));
  for (int i = 0; i < 2; i++) {
    EXPECT_TRUE (peers[i]->closed_by_server (10s))
        << "connection " << i << " still open after " << sent[i] / MB << " MB of body";
    EXPECT_LT (sent[i], BODY_PER_CONNECTION) << "connection " << i << ": the whole body was taken";
    const std::string &answer = peers[i]->received ();
    if (!answer.empty ()) {
      EXPECT_EQ (answer.rfind ("RTSP/1.0 413", 0), 0u) << answer;
    }
  }
  EXPECT_LT (peak, idle + RSS_SLACK) << "idle " << idle / MB << " MB, peak " << peak / MB << " MB";
  EXPECT_EQ (relay.options (), "RTSP/1.0 200 OK");
  RtspProbe probe (relay.port);
  EXPECT_EQ (probe.describe ("cam"), "RTSP/1.0 200 OK");
}

// Whether a new connection from `from` is closed by camrelay without a
// word, even after sending a request.
bool
refused (int port, const char *from)
{
  Peer peer (port, from);
  if (!peer.ok ())
    return false;
  peer.send_all (rtsp_request (port, "OPTIONS", "cam", 1));
  return peer.closed_by_server (5s) && peer.received ().empty ();
}

// Opens a connection from `from` and has one OPTIONS answered on it, so that
// camrelay has surely counted it.
std::unique_ptr<Peer>
admitted (int port, const char *from)
{
  auto peer = std::make_unique<Peer> (port, from);
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
  std::vector<std::unique_ptr<Peer>> open;
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
  Peer idle (relay.port);
  Peer asking (relay.port);
  ASSERT_TRUE (idle.ok () && asking.ok ());

  // The one asking OPTIONS every 500 ms is answered until it is cut.
  const auto limit = start + LOGIN_TIMEOUT + 4s;
  int cseq = 0;
  bool asking_closed = false;
  while (!asking_closed && Clock::now () < limit) {
    if (!asking.send_all (rtsp_request (relay.port, "OPTIONS", "cam", ++cseq)))
      break;
    asking_closed = asking.closed_by_server (500ms);
  }
  const auto asking_cut = Clock::now () - start;
  EXPECT_TRUE (asking_closed || asking.closed_by_server (0ms))
      << "still open after " << cseq << " OPTIONS";
  EXPECT_GE (asking_cut, LOGIN_TIMEOUT - 100ms) << "cut before its time";
  EXPECT_NE (asking.received ().find ("CSeq: 2\r\n"), std::string::npos) << asking.received ();
  EXPECT_TRUE (idle.closed_by_server (std::chrono::duration_cast<std::chrono::milliseconds> (
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
  const uint64_t idle = resident_bytes (relay.camrelay->pid ());

  constexpr uint64_t BODY = 200 * MB;
  Peer peer (relay.http_port);
  const auto start = Clock::now ();
  ASSERT_TRUE (peer.send_all ("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
      + std::to_string (BODY) + "\r\nContent-Type: application/octet-stream\r\n\r\n"));
  const std::string chunk (1 * MB, 'x');
  uint64_t sent = 0;
  uint64_t peak = idle;
  while (sent < BODY && Clock::now () < start + 60s) {
    long n = peer.send_some (chunk.data (), chunk.size (), 20ms);
    if (n < 0)
      break;
    sent += static_cast<uint64_t> (n);
    peak = std::max (peak, resident_bytes (relay.camrelay->pid ()));
    if (n == 0 && peer.closed_by_server (20ms))
      break;
  }
  const std::string answer = peer.read_until ("\r\n\r\n", 5s);
  const auto answered = Clock::now () - start;
  peak = std::max (peak, resident_bytes (relay.camrelay->pid ()));
  EXPECT_EQ (answer.rfind ("HTTP/1.1 413", 0), 0u) << answer;
  EXPECT_LT (answered, 5s);
  EXPECT_LT (sent, BODY) << "the whole body was taken";
  EXPECT_TRUE (peer.closed_by_server (5s));
  EXPECT_LT (peak, idle + RSS_SLACK) << "idle " << idle / MB << " MB, peak " << peak / MB << " MB";
  EXPECT_EQ (relay.metrics (), 200);
}

// A chunked request body (its size unknown) is refused the same way.
TEST (SecurityBounds, ChunkedHttpBodyIsRefused)
{
  Relay relay;
  ASSERT_GT (relay.http_port, 0) << relay.camrelay->all_output ();
  Peer peer (relay.http_port);
  ASSERT_TRUE (peer.send_all ("POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n"));
  EXPECT_EQ (peer.read_until ("\r\n\r\n", 5s).rfind ("HTTP/1.1 413", 0), 0u) << peer.received ();
  EXPECT_TRUE (peer.closed_by_server (5s));
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
  std::vector<std::unique_ptr<Peer>> idle;
  for (int i = 0; i < 500; i++) {
    idle.push_back (std::make_unique<Peer> (relay.http_port));
    ASSERT_TRUE (idle.back ()->ok ()) << "connection " << i;
  }
  const auto connected = Clock::now ();
  EXPECT_EQ (relay.metrics (), 200);
  const auto deadline = connected + IDLE_TIMEOUT + 5s;
  int open = 0;
  for (auto &peer : idle) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (deadline - Clock::now ());
    if (!peer->closed_by_server (std::max (left, 0ms)))
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
  std::vector<std::unique_ptr<Peer>> idle;
  for (int i = 0; i < 4; i++)
    idle.push_back (std::make_unique<Peer> (relay.http_port));
  Peer over (relay.http_port);
  over.send_all ("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_TRUE (over.closed_by_server (5s));
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
