// Connections and credentials against the real camrelay binary: idle and
// trickling connections, the HTTP tunnel, many clients at once, forged Digest
// answers, passwords kept out of the log and HTTP.  docs/security.md.
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "security/security_server.h"

namespace {

using namespace camrelay::launcher_test;
using namespace camrelay::security_test;

// ---- connections that never send a request ---------------------------------

// The key of [server] that closes connections that never log in, where this
// camrelay has it (TODO(keys): the name the hardening gives it).  Without it,
// gst-rtsp-server closes a connection without a session after a fixed 60 s,
// more than this suite can wait for: the test then does not wait for the
// server to close them and checks instead that holding them costs the other
// clients nothing and that closing them frees what they held.
const std::string LOGIN_TIMEOUT_KEY = "login_timeout";
constexpr int LOGIN_TIMEOUT_S = 2;

bool
config_accepts (const std::string &text)
{
  const std::string path = write_config (text);
  int status = 0;
  run ("sh -c \"" + std::string (CAMRELAY_BINARY) + " --check -c " + path + " 2>/dev/null\"",
      status);
  g_unlink (path.c_str ());
  return status == 0;
}

// 1 000 connections that send nothing and 300 that send one byte a second
// (a request that never ends): while they are held a fresh client plays
// (from another address, so that a limit per address does not apply to it);
// they are closed within the login timeout where there is one; once they are
// gone the server's descriptors are back to what they were, and a fresh
// client plays.  [limits]: with a limit of connections per address, most of
// them are closed at once, which passes too.
TEST (MalformedConnections, IdleAndTricklingConnectionsAreBounded)
{
  constexpr int IDLE = 1000;
  constexpr int TRICKLING = 300;
  const bool has_login_timeout = config_accepts (
      "[server]\n" + LOGIN_TIMEOUT_KEY + " = " + std::to_string (LOGIN_TIMEOUT_S) + "\n\n"
      + camera_entry ("cam", CAMERA));
  std::string text = config_text (camera_entry ("cam", CAMERA));
  if (has_login_timeout)
    text.insert (text.find ("\n\n[http]"),
        "\n" + LOGIN_TIMEOUT_KEY + " = " + std::to_string (LOGIN_TIMEOUT_S));
  Server server;
  server.config = write_config (text);
  server.camrelay = std::make_unique<Launcher> (std::vector<std::string>{"-c", server.config});
  server.port = server.camrelay->rtsp_port ();
  ASSERT_GT (server.port, 0) << server.camrelay->all_output ();
  const int pid = server.camrelay->pid ();
  ASSERT_TRUE (fresh_client_plays (server));
  const int fds_before = count_fds (pid);

  const auto opened_at = Clock::now ();
  std::vector<std::unique_ptr<Wire>> wires = open_connections (server.port, IDLE + TRICKLING);
  for (size_t i = 0; i < wires.size (); i++)
    ASSERT_TRUE (wires[i]->ok ()) << "connection " << i;
  const double open_s = std::chrono::duration<double> (Clock::now () - opened_at).count ();

  // One byte a second on each trickling connection, for as long as the test
  // holds them (bounded by the waits below).
  std::atomic<bool> trickle_stop{false};
  std::thread trickle ([&] {
    const std::string request = "OPTIONS rtsp://127.0.0.1:" + std::to_string (server.port)
        + "/cam RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: " + std::string (200, 'x');
    for (size_t byte = 0; !trickle_stop && byte < request.size (); byte++) {
      for (int i = IDLE; i < IDLE + TRICKLING; i++)
        send (wires[static_cast<size_t> (i)]->fd (), &request[byte], 1, MSG_NOSIGNAL);
      for (int tick = 0; tick < 10 && !trickle_stop; tick++)
        std::this_thread::sleep_for (100ms);
    }
  });

  EXPECT_TRUE (fresh_client_plays (server, "127.0.0.2")) << "while they are held";
  const int fds_held = count_fds (pid);

  // Whether the server closed each connection, up to `timeout`.
  auto closed_by_server = [&] (std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now () + timeout;
    int closed = 0;
    for (auto &wire : wires)
      closed += wire->closed_within (std::max (std::chrono::duration_cast<std::chrono::milliseconds> (
          deadline - Clock::now ()), 0ms));
    return closed;
  };
  int closed = 0;
  if (has_login_timeout) {
    closed = closed_by_server (std::chrono::seconds (LOGIN_TIMEOUT_S + 10));
    EXPECT_EQ (closed, IDLE + TRICKLING) << "not closed within " << LOGIN_TIMEOUT_S << " s + 10 s";
  } else {
    closed = closed_by_server (0ms);
    std::printf ("no %s key: connections are closed by gst-rtsp-server after 60 s, not awaited\n",
        LOGIN_TIMEOUT_KEY.c_str ());
  }
  trickle_stop = true;
  trickle.join ();
  wires.clear ();

  // Their descriptors go back once they are closed.
  int fds_after = count_fds (pid);
  for (int i = 0; i < 100 && fds_after > fds_before + 10; i++) {
    std::this_thread::sleep_for (100ms);
    fds_after = count_fds (pid);
  }
  std::printf ("%d connections opened in %.2f s; server fds %d before, %d held, %d after; "
      "%d closed by the server\n", IDLE + TRICKLING, open_s, fds_before, fds_held, fds_after, closed);
  EXPECT_LE (fds_after, fds_before + 10);
  EXPECT_TRUE (fresh_client_plays (server)) << "after they are gone";
  expect_clean_stop (*server.camrelay, server.config);
}

// RTSP tunnelled in HTTP (gst-rtsp-server's, on by default): a GET that
// receives and a POST that sends base64, paired by a cookie.  A second POST
// with the cookie of a tunnel already paired injects nothing into it; a POST
// with an unknown cookie and garbage in the owner's POST get no answer but an
// error, and a fresh client plays after them.
TEST (MalformedConnections, HttpTunnelTakesNoStrangersRequests)
{
  Server server;
  start (server, Access::ANONYMOUS);
  ASSERT_GT (server.port, 0) << server.camrelay->all_output ();
  // Each request is encoded on its own, so it must need no '=' padding to
  // continue the stream: a header of the right length makes it a multiple
  // of 3 bytes.
  auto options = [&] (int cseq) {
    std::string text = "OPTIONS " + fill ("{url}", server) + " RTSP/1.0\r\nCSeq: "
        + std::to_string (cseq) + "\r\nX-Pad: ";
    text += std::string ((3 - (text.size () + 4) % 3) % 3, 'p') + "\r\n\r\n";
    gchar *encoded = g_base64_encode (reinterpret_cast<const guchar *> (text.data ()), text.size ());
    std::string result = encoded;
    g_free (encoded);
    return result;
  };
  auto post = [] (const std::string &cookie) {
    return "POST /cam HTTP/1.0\r\nx-sessioncookie: " + cookie
        + "\r\nContent-Type: application/x-rtsp-tunnelled\r\nContent-Length: 32767\r\n\r\n";
  };

  Wire receiver (server.port);
  const Seen &got = receiver.exchange ("GET /cam HTTP/1.0\r\nx-sessioncookie: tunnel-1\r\n"
      "Accept: application/x-rtsp-tunnelled\r\n\r\n", 1, ANSWER_WITHIN);
  ASSERT_EQ (got.statuses.size (), 1u);
  ASSERT_EQ (got.statuses[0], 200) << got.heads[0];
  Wire sender (server.port);
  sender.exchange (post ("tunnel-1") + options (5), 0, ANSWER_WITHIN);
  receiver.exchange ("", 2, ANSWER_WITHIN);
  ASSERT_EQ (got.statuses.size (), 2u) << "the tunnel does not work";
  EXPECT_NE (got.heads[1].find ("CSeq: 5"), std::string::npos) << got.heads[1];

  {
    Wire intruder (server.port);
    const Seen &seen = intruder.exchange (post ("tunnel-1") + options (6), 1, SILENCE);
    for (int status : seen.statuses)
      EXPECT_GE (status, 400) << "a second POST of a paired tunnel";
    Wire stranger (server.port);
    const Seen &other = stranger.exchange (post ("no-such-tunnel") + options (7), 1, SILENCE);
    for (int status : other.statuses)
      EXPECT_GE (status, 400) << "a POST of an unknown tunnel";
  }
  // The owner's next request is the next answer: the intruder's never came.
  sender.exchange (options (8), 0, ANSWER_WITHIN);
  receiver.exchange ("", 3, ANSWER_WITHIN);
  ASSERT_EQ (got.statuses.size (), 3u);
  EXPECT_NE (got.heads[2].find ("CSeq: 8"), std::string::npos) << got.heads[2];

  // Garbage in the owner's POST: not base64, then binary noise.
  sender.exchange ("!!!! not base64 @@@@\r\n\r\n" + noise (2048, 6), 0, ANSWER_WITHIN);
  receiver.exchange ("", 4, SILENCE);
  for (size_t i = 3; i < got.statuses.size (); i++)
    EXPECT_GE (got.statuses[i], 400) << got.heads[i];
  ASSERT_TRUE (alive (server.camrelay->pid ())) << server.camrelay->all_output ();
  EXPECT_TRUE (fresh_client_plays (server));
  expect_clean_stop (*server.camrelay, server.config);
}

// ---- many clients at once ---------------------------------------------------------

// 2 000 DESCRIBEs from 50 threads (40 each on a connection of its own, from
// an address of its own so that a limit per address [limits] does not apply)
// are all answered 200; the p95 latency is printed, and only a generous bound
// is asserted (the machine is shared).  The connections are opened and
// answered once first: a short listen backlog delays a burst of new
// connections by seconds (the kernel's SYN-ACK retries), which is not what
// this measures.
TEST (MalformedConnections, ConcurrentDescribesAreAllAnswered)
{
  constexpr int THREADS = 50;
  constexpr int EACH = 40;
  Server server;
  start (server, Access::ANONYMOUS);
  ASSERT_GT (server.port, 0) << server.camrelay->all_output ();
  ASSERT_TRUE (fresh_client_plays (server));

  std::vector<std::unique_ptr<Wire>> wires = open_connections (server.port, THREADS, true);
  for (auto &wire : wires) {
    const Seen &seen = wire->exchange (fill (req ("OPTIONS", "{url}"), server), 1, 3 * ANSWER_WITHIN);
    ASSERT_EQ (seen.statuses.size (), 1u) << "no answer to OPTIONS";
  }
  std::vector<std::vector<double>> latencies (THREADS);
  std::vector<int> failures (THREADS, 0);
  std::vector<std::thread> threads;
  const std::string describe = fill (req ("DESCRIBE", "{url}", "Accept: application/sdp\r\n"), server);
  const auto started = Clock::now ();
  for (int t = 0; t < THREADS; t++)
    threads.emplace_back ([&, t] {
      Wire &wire = *wires[static_cast<size_t> (t)];
      for (size_t i = 2; i < EACH + 2; i++) {
        const auto sent = Clock::now ();
        const Seen &seen = wire.exchange (describe, i, ANSWER_WITHIN);
        latencies[static_cast<size_t> (t)].push_back (
            std::chrono::duration<double, std::milli> (Clock::now () - sent).count ());
        if (seen.statuses.size () != i || seen.statuses.back () != 200)
          failures[static_cast<size_t> (t)]++;
      }
    });
  for (std::thread &t : threads)
    t.join ();
  const double total_s = std::chrono::duration<double> (Clock::now () - started).count ();

  std::vector<double> all;
  for (const auto &l : latencies)
    all.insert (all.end (), l.begin (), l.end ());
  std::sort (all.begin (), all.end ());
  const double p95 = all[all.size () * 95 / 100];
  int failed = 0;
  for (int f : failures)
    failed += f;
  std::printf ("%zu DESCRIBEs from %d threads in %.2f s: p50 %.1f ms, p95 %.1f ms, max %.1f ms\n",
      all.size (), THREADS, total_s, all[all.size () / 2], p95, all.back ());
  EXPECT_EQ (failed, 0);
  EXPECT_LT (p95, 2000.0);
  EXPECT_TRUE (fresh_client_plays (server));
  expect_clean_stop (*server.camrelay, server.config);
}

// Digest answers that are forged or replayed get 401; the genuine one gets
// 200, so the test can tell them apart.  Each forgery comes from an address
// of its own (127.0.0.x) on a nonce issued to it, so that a server that slows
// down repeated failures from one address [auth] answers each as a first
// failure.  Replays must keep failing on another connection whatever becomes
// of nonces across reloads.
TEST (MalformedCredentials, ForgedAndReplayedDigestGet401)
{
  Server server;
  start (server, Access::USERS);
  ASSERT_GT (server.port, 0) << server.camrelay->all_output ();
  const std::string url = fill ("{url}", server);

  auto owner = std::make_unique<Wire> (server.port);
  std::string realm, nonce;
  ASSERT_TRUE (challenge (*owner, server, realm, nonce))
      << testing::PrintToString (owner->seen ().heads);
  const std::string genuine = digest (USER, PASSWORD, realm, nonce, "DESCRIBE", url);
  ASSERT_EQ (describe_with (*owner, server, genuine), 200) << server.camrelay->all_output ();

  using Forge = std::function<std::string (const std::string &realm, const std::string &nonce)>;
  const std::vector<std::pair<std::string, Forge>> forgeries = {
    {"forged response", [&] (const std::string &r, const std::string &n) {
       std::string header = digest (USER, PASSWORD, r, n, "DESCRIBE", url);
       char &c = header[header.find ("response=\"") + 10];
       c = c == '0' ? '1' : '0';
       return header;
     }},
    {"wrong password", [&] (const std::string &r, const std::string &n) {
       return digest (USER, "not-" + PASSWORD, r, n, "DESCRIBE", url);
     }},
    {"unknown user", [&] (const std::string &r, const std::string &n) {
       return digest ("mallory", PASSWORD, r, n, "DESCRIBE", url);
     }},
    {"nonce never issued", [&] (const std::string &r, const std::string &) {
       return digest (USER, PASSWORD, r, "0123456789abcdef", "DESCRIBE", url);
     }},
    {"the owner's nonce", [&] (const std::string &, const std::string &) {
       return digest (USER, PASSWORD, realm, nonce, "DESCRIBE", url);
     }},
    {"response of another method", [&] (const std::string &r, const std::string &n) {
       return digest (USER, PASSWORD, r, n, "OPTIONS", url);
     }},
    {"no response", [&] (const std::string &r, const std::string &n) {
       return "Authorization: Digest username=\"" + USER + "\", realm=\"" + r + "\", nonce=\"" + n
           + "\", uri=\"" + url + "\"\r\n";
     }},
    {"garbage", [&] (const std::string &, const std::string &) {
       return "Authorization: Digest " + std::string (4096, ',') + "\r\n";
     }},
  };
  int source = 20;
  for (const auto &[why, forge] : forgeries) {
    Wire attacker (server.port, ("127.0.0." + std::to_string (source++)).c_str ());
    std::string r, n;
    ASSERT_TRUE (challenge (attacker, server, r, n)) << why;
    EXPECT_EQ (describe_with (attacker, server, forge (r, n)), 401) << why;
  }

  // The genuine answer, seen on the wire, replayed on other connections while
  // its owner is connected (from the owner's address and another), then
  // after it has left.
  {
    Wire thief (server.port);
    EXPECT_EQ (describe_with (thief, server, genuine), 401) << "replayed from the owner's address";
  }
  {
    Wire thief (server.port, "127.0.0.40");
    EXPECT_EQ (describe_with (thief, server, genuine), 401) << "replayed from another address";
  }
  owner.reset ();
  {
    Wire thief (server.port);
    EXPECT_EQ (describe_with (thief, server, genuine), 401) << "replayed after the owner left";
  }
  EXPECT_TRUE (fresh_client_plays (server));
  expect_clean_stop (*server.camrelay, server.config);
}

// No password, of a user or of a camera, appears in the log, /api/cameras,
// /metrics or /healthz, after logins that succeed and fail, with Basic and
// Digest, and cameras whose addresses carry credentials.
TEST (MalformedCredentials, NoPasswordInLogOrHttp)
{
  const std::string camera_secret = "cam-secret-3";
  const std::string vendor_secret = "vendor-secret-4";
  const std::string tried_secret = "tried-secret-5";
  Server server;
  server.config = write_config (config_text (users_section () + camera_entry ("cam", CAMERA)
      + camera_entry ("door", "rtsp://camuser:" + camera_secret + "@127.0.0.1:9/stream")
      + "[[cameras]]\nname = \"gate\"\nvendor = \"reolink\"\naddress = \"127.0.0.1:9\"\n"
        "username = \"admin\"\npassword = \"" + vendor_secret + "\"\n\n"));
  server.camrelay = std::make_unique<Launcher> (std::vector<std::string>{"-c", server.config});
  server.port = server.camrelay->rtsp_port ();
  server.auth = basic (USER, PASSWORD);
  const int http = server.camrelay->http_port ();
  ASSERT_GT (server.port, 0) << server.camrelay->all_output ();
  ASSERT_GT (http, 0) << server.camrelay->all_output ();
  // Both cameras with credentials have tried and failed to connect.
  ASSERT_NE (server.camrelay->wait_line ("camera door: ", 10s), "") << server.camrelay->all_output ();
  ASSERT_NE (server.camrelay->wait_line ("camera gate: ", 10s), "") << server.camrelay->all_output ();

  EXPECT_TRUE (fresh_client_plays (server));
  // Logins that fail (from an address of their own [auth]) and succeed,
  // with Basic and Digest.
  const std::string url = fill ("{url}", server);
  std::string realm, nonce;
  {
    Wire wire (server.port, "127.0.0.4");
    EXPECT_EQ (describe_with (wire, server, basic (USER, tried_secret)), 401);
    EXPECT_EQ (describe_with (wire, server, basic ("bob", tried_secret)), 401);
    EXPECT_EQ (describe_with (wire, server, basic ("mallory", tried_secret)), 401);
    ASSERT_TRUE (challenge (wire, server, realm, nonce));
    EXPECT_EQ (describe_with (wire, server,
                   digest (USER, tried_secret, realm, nonce, "DESCRIBE", url)), 401);
  }
  {
    Wire wire (server.port);
    EXPECT_EQ (describe_with (wire, server, basic ("bob", "builder-9")), 200);
    ASSERT_TRUE (challenge (wire, server, realm, nonce));
    EXPECT_EQ (describe_with (wire, server,
                   digest (USER, PASSWORD, realm, nonce, "DESCRIBE", url)), 200);
  }

  std::string served;
  for (const char *path : {"/api/cameras", "/metrics", "/healthz"}) {
    int status = 0;
    const std::string body = http_get (http, path, status);
    EXPECT_EQ (status, 0) << path;
    EXPECT_NE (body, "") << path;
    served += std::string (path) + ":\n" + body + "\n";
  }
  const std::string log = server.camrelay->all_output ();
  const std::string basic_line = basic (USER, PASSWORD);
  const std::string encoded = basic_line.substr (21, basic_line.size () - 23);
  for (const std::string &secret :
      {PASSWORD, std::string ("builder-9"), camera_secret, vendor_secret, tried_secret, encoded}) {
    EXPECT_EQ (log.find (secret), std::string::npos) << "\"" << secret << "\" in the log:\n" << log;
    EXPECT_EQ (served.find (secret), std::string::npos) << "\"" << secret << "\" served:\n" << served;
  }
  expect_clean_stop (*server.camrelay, server.config);
}

}  // namespace
