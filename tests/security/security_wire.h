// Raw RTSP connections for the security tests: a socket that sends while it
// reads and parses answers and '$' frames, builders of hostile requests,
// what the server spends (memory, descriptors), Digest.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace camrelay::security_test {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What came back on a connection.
struct Seen {
  std::vector<int> statuses;    // of each RTSP answer; -1 for one that is not RTSP or HTTP
  std::vector<std::string> heads;  // each answer whole: status line, headers, body
  bool closed = false;          // closed or reset by the server
  size_t frames = 0;            // interleaved '$' frames received

  std::string header (size_t answer, const std::string &name) const
  {
    const std::string &head = heads.at (answer);
    for (size_t at = head.find ("\r\n"); at != std::string::npos; at = head.find ("\r\n", at + 2))
      if (g_ascii_strncasecmp (head.c_str () + at + 2, (name + ":").c_str (), name.size () + 1)
          == 0) {
        size_t value = head.find_first_not_of (' ', at + 3 + name.size ());
        return head.substr (value, head.find ("\r\n", value) - value);
      }
    return "";
  }
};

// The URL of `path` on the server at 127.0.0.1:`port`.
inline std::string
rtsp_url (int port, const std::string &path)
{
  return "rtsp://127.0.0.1:" + std::to_string (port) + "/" + path;
}

// A well-formed request for `path` with `headers` (lines without CRLF).
inline std::string
rtsp_request (int port, const std::string &method, const std::string &path, int cseq,
    const std::vector<std::string> &headers = {})
{
  std::string text = method + " " + rtsp_url (port, path) + " RTSP/1.0\r\nCSeq: "
      + std::to_string (cseq) + "\r\n";
  for (const std::string &h : headers)
    text += h + "\r\n";
  return text + "\r\n";
}

// The status of an RTSP answer, 0 when it is none.
inline int
status_of (const std::string &answer)
{
  return answer.rfind ("RTSP/1.0 ", 0) == 0 ? std::atoi (answer.c_str () + 9) : 0;
}

// A raw TCP connection to 127.0.0.1:`port`, for clients that misbehave.  It
// sends while it reads, so that a flood of requests cannot deadlock on full
// socket buffers; it parses answers and '$' frames as they come and keeps
// every byte received as well.  `source` binds the client's side to another
// loopback address (127.0.0.2 is a second client address on Linux).  The
// socket is non-blocking and every wait is bounded.
class Wire {
 public:
  // A SYN that finds the server's accept queue full is retried after 1 s,
  // 3 s, 7 s...: a connection may take that long on a server whose listen
  // backlog is short.
  static constexpr int CONNECT_WITHIN_MS = 15000;

  explicit Wire (int port, const char *source = nullptr) : port_ (port)
  {
    fd_ = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0)
      return;
    if (source) {
      sockaddr_in local = {};
      local.sin_family = AF_INET;
      if (inet_pton (AF_INET, source, &local.sin_addr) != 1
          || bind (fd_, reinterpret_cast<sockaddr *> (&local), sizeof (local)) != 0) {
        close (fd_);
        fd_ = -1;
        return;
      }
    }
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons (static_cast<uint16_t> (port));
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd_, reinterpret_cast<sockaddr *> (&address), sizeof (address)) != 0
        && errno != EINPROGRESS) {
      close (fd_);
      fd_ = -1;
      return;
    }
    pollfd p = {fd_, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof (error);
    if (poll (&p, 1, CONNECT_WITHIN_MS) != 1
        || getsockopt (fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) {
      close (fd_);
      fd_ = -1;
    }
  }
  ~Wire ()
  {
    if (fd_ >= 0)
      close (fd_);
  }
  Wire (const Wire &) = delete;
  Wire &operator= (const Wire &) = delete;

  bool ok () const { return fd_ >= 0; }
  int fd () const { return fd_; }
  const Seen &seen () const { return seen_; }
  // Every byte received so far, answers and frames alike.
  const std::string &received () const { return received_; }

  // ---- sending raw bytes ----

  // Sends `bytes`, reading meanwhile, then reads until `answers` answers in
  // all have come (counting those of earlier calls), the server closed, or
  // `timeout` passed.  A failed send counts as closed.
  Seen &exchange (const std::string &bytes, size_t answers, std::chrono::milliseconds timeout)
  {
    pump (bytes, answers, timeout);
    if (send_failed_)
      seen_.closed = true;
    return seen_;
  }

  // Sends `bytes` within `timeout`, reading meanwhile; whether all were sent.
  bool send_all (const std::string &bytes, std::chrono::milliseconds timeout = 5s)
  {
    return pump (bytes, 0, timeout) == bytes.size ();
  }

  // Sends what fits within `timeout`, without reading: the bytes sent, or -1
  // once a send failed (the connection closed or reset by the server).
  long send_some (const char *data, size_t size, std::chrono::milliseconds timeout)
  {
    if (fd_ < 0 || send_failed_)
      return -1;
    pollfd p = {fd_, POLLOUT, 0};
    if (poll (&p, 1, static_cast<int> (timeout.count ())) <= 0)
      return 0;
    const ssize_t n = send (fd_, data, size, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return 0;
    if (n <= 0) {
      send_failed_ = true;
      return -1;
    }
    return n;
  }

  // ---- one request at a time ----

  // Sends a well-formed request for `path` with the next CSeq.
  bool send_request (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers = {})
  {
    return send_all (rtsp_request (port_, method, path, ++cseq_, headers));
  }

  // The next answer not yet taken by read_answer() (status line, headers and
  // body; '$' frames in between are counted and skipped); "" when none came
  // within `timeout` or the server closed.
  std::string read_answer (std::chrono::milliseconds timeout = 15s)
  {
    const auto deadline = Clock::now () + timeout;
    while (seen_.heads.size () <= taken_ && !seen_.closed && Clock::now () < deadline)
      read_for (std::min (left (deadline), std::chrono::milliseconds (50)));
    return seen_.heads.size () > taken_ ? seen_.heads[taken_++] : "";
  }

  // send_request() then read_answer().
  std::string ask (const std::string &method, const std::string &path,
      const std::vector<std::string> &headers = {})
  {
    return send_request (method, path, headers) ? read_answer () : "";
  }

  // DESCRIBE, SETUP (TCP interleaved) and PLAY of `mount` with `headers`
  // (credentials) in each; the session ID, or "" when one was not 200.
  std::string play (const std::string &mount, const std::vector<std::string> &headers = {})
  {
    std::vector<std::string> describe = headers;
    describe.push_back ("Accept: application/sdp");
    if (status_of (ask ("DESCRIBE", mount, describe)) != 200)
      return "";
    std::vector<std::string> setup = headers;
    setup.push_back ("Transport: RTP/AVP/TCP;unicast;interleaved=0-1");
    const std::string answer = ask ("SETUP", mount + "/stream=0", setup);
    const size_t at = answer.find ("Session: ");
    if (status_of (answer) != 200 || at == std::string::npos)
      return "";
    const std::string session = answer.substr (at + 9, answer.find_first_of (";\r", at + 9) - at - 9);
    std::vector<std::string> play = headers;
    play.push_back ("Session: " + session);
    play.push_back ("Range: npt=0-");
    return status_of (ask ("PLAY", mount, play)) == 200 ? session : "";
  }

  // ---- waiting ----

  // Reads (bounded) until `count` more '$' frames arrived; true when they did.
  bool wait_frames (size_t count, std::chrono::milliseconds timeout)
  {
    const size_t target = seen_.frames + count;
    const auto deadline = Clock::now () + timeout;
    while (!seen_.closed && seen_.frames < target && Clock::now () < deadline)
      read_for (std::chrono::milliseconds (50));
    return seen_.frames >= target;
  }

  // The '$' frames received so far, after reading for `duration`.
  long frames_after (std::chrono::milliseconds duration)
  {
    const auto deadline = Clock::now () + duration;
    while (!seen_.closed && Clock::now () < deadline)
      read_for (std::min (left (deadline), std::chrono::milliseconds (50)));
    return static_cast<long> (seen_.frames);
  }

  // Reads until `text` was received, the server closed, or `timeout`
  // passed; all that was received.
  const std::string &read_until (const std::string &text, std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    while (received_.find (text) == std::string::npos && !seen_.closed && Clock::now () < deadline)
      read_for (std::min (left (deadline), std::chrono::milliseconds (50)));
    return received_;
  }

  // Reads what comes within `timeout` (at least once); whether the server
  // closed the connection (EOF or reset).
  bool closed_within (std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    do
      read_for (std::min (left (deadline), std::chrono::milliseconds (50)));
    while (!seen_.closed && Clock::now () < deadline);
    return seen_.closed;
  }

 private:
  static std::chrono::milliseconds left (Clock::time_point deadline)
  {
    return std::max (std::chrono::duration_cast<std::chrono::milliseconds> (deadline - Clock::now ()),
        std::chrono::milliseconds (0));
  }

  // Sends `bytes` while reading until all were sent and `answers` answers in
  // all have come, the server closed, a send failed, or `timeout` passed;
  // the bytes sent.
  size_t pump (const std::string &bytes, size_t answers, std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    size_t sent = 0;
    while (fd_ >= 0 && !seen_.closed && !send_failed_
        && (sent < bytes.size () || seen_.statuses.size () < answers)) {
      const auto remaining = left (deadline);
      if (remaining.count () <= 0)
        break;
      pollfd p = {fd_, static_cast<short> (POLLIN | (sent < bytes.size () ? POLLOUT : 0)), 0};
      if (poll (&p, 1, static_cast<int> (std::min<long> (remaining.count (), 100))) <= 0)
        continue;
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        receive ();
      if (!seen_.closed && sent < bytes.size () && (p.revents & POLLOUT)) {
        ssize_t n = send (fd_, bytes.data () + sent, bytes.size () - sent, MSG_NOSIGNAL);
        if (n > 0)
          sent += static_cast<size_t> (n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
          send_failed_ = true;
      }
    }
    return sent;
  }

  // Waits up to `timeout` for something to read, then reads it once.
  void read_for (std::chrono::milliseconds timeout)
  {
    pollfd p = {fd_, POLLIN, 0};
    if (fd_ >= 0 && !seen_.closed && poll (&p, 1, static_cast<int> (timeout.count ())) > 0)
      receive ();
  }

  void receive ()
  {
    char chunk[65536];
    ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      seen_.closed = true;
      return;
    }
    if (n > 0) {
      received_.append (chunk, static_cast<size_t> (n));
      in_.append (chunk, static_cast<size_t> (n));
    }
    parse ();
  }

  // Takes whole '$' frames and answers off the front of what came in.
  void parse ()
  {
    while (!in_.empty ()) {
      if (in_[0] == '$') {
        if (in_.size () < 4)
          return;
        const size_t length = (static_cast<unsigned char> (in_[2]) << 8)
            | static_cast<unsigned char> (in_[3]);
        if (in_.size () < 4 + length)
          return;
        in_.erase (0, 4 + length);
        seen_.frames++;
        continue;
      }
      const size_t end = in_.find ("\r\n\r\n");
      if (end == std::string::npos)
        return;
      std::string head = in_.substr (0, end + 2);
      size_t body = 0;
      for (size_t at = 0; at != std::string::npos; at = head.find ("\r\n", at + 1))
        if (g_ascii_strncasecmp (head.c_str () + at, "\r\nContent-Length:", 17) == 0)
          body = std::strtoul (head.c_str () + at + 17, nullptr, 10);
      if (in_.size () < end + 4 + body)
        return;
      const bool framed = head.rfind ("RTSP/", 0) == 0 || head.rfind ("HTTP/", 0) == 0;
      const size_t space = head.find (' ');
      seen_.statuses.push_back (framed && space != std::string::npos
              ? std::atoi (head.c_str () + space + 1) : -1);
      seen_.heads.push_back (in_.substr (0, end + 4 + body));
      in_.erase (0, end + 4 + body);
    }
  }

  int port_;
  int fd_ = -1;
  int cseq_ = 0;
  bool send_failed_ = false;
  std::string received_;  // every byte
  std::string in_;        // bytes not parsed yet
  Seen seen_;
  size_t taken_ = 0;      // answers taken by read_answer()
};

// ---- building requests -------------------------------------------------------
// A case's bytes may hold {url} (the camera's URL), {host} (the server's
// rtsp://127.0.0.1:PORT), {auth} (an Authorization header line of a valid
// user where the server has users, else nothing) and {session} (the session
// of the case's prelude).

inline std::string
req (const std::string &method, const std::string &target, const std::string &headers = "",
    const std::string &body = "")
{
  return method + " " + target + " RTSP/1.0\r\nCSeq: 7\r\n{auth}" + headers
      + (body.empty () ? "" : "Content-Length: " + std::to_string (body.size ()) + "\r\n")
      + "\r\n" + body;
}

inline std::string
repeat (const std::string &text, size_t times)
{
  std::string out;
  out.reserve (text.size () * times);
  for (size_t i = 0; i < times; i++)
    out += text;
  return out;
}

// Pseudo-random bytes, the same on every run.
inline std::string
noise (size_t size, unsigned seed)
{
  std::mt19937 generator (seed);
  std::string out (size, '\0');
  for (char &c : out)
    c = static_cast<char> (generator () & 0xff);
  return out;
}

// An interleaved data frame of the client.
inline std::string
frame (unsigned channel, const std::string &payload)
{
  std::string out = "$";
  out += static_cast<char> (channel);
  out += static_cast<char> ((payload.size () >> 8) & 0xff);
  out += static_cast<char> (payload.size () & 0xff);
  return out + payload;
}

inline std::string
numbered_headers (size_t count)
{
  std::string out;
  for (size_t i = 0; i < count; i++)
    out += "X-Header-" + std::to_string (i) + ": value\r\n";
  return out;
}

inline std::string
pipelined (const std::string &method, const std::string &target, const std::string &headers,
    size_t count)
{
  std::string out;
  for (size_t i = 1; i <= count; i++)
    out += method + " " + target + " RTSP/1.0\r\nCSeq: " + std::to_string (i) + "\r\n{auth}"
        + headers + "\r\n";
  return out;
}

inline std::string
transport (const std::string &value)
{
  return req ("SETUP", "{url}/stream=0", "Transport: " + value + "\r\n");
}

inline std::string
substitute (std::string text, const std::string &key, const std::string &value)
{
  for (size_t at = text.find (key); at != std::string::npos;
       at = text.find (key, at + value.size ()))
    text.replace (at, key.size (), value);
  return text;
}

// ---- the server's side ---------------------------------------------------------

// Open file descriptors of process `pid`.
inline int
count_fds (int pid)
{
  int count = 0;
  if (GDir *dir = g_dir_open (("/proc/" + std::to_string (pid) + "/fd").c_str (), 0, nullptr)) {
    while (g_dir_read_name (dir))
      count++;
    g_dir_close (dir);
  }
  return count;
}

// Resident memory (VmRSS) of process `pid` in kB, or -1.
inline long
rss_kb (int pid)
{
  std::ifstream status ("/proc/" + std::to_string (pid) + "/status");
  std::string line;
  while (std::getline (status, line))
    if (line.rfind ("VmRSS:", 0) == 0)
      return std::atol (line.c_str () + 6);
  return -1;
}

// How much camrelay may grow through an attack, in kB (issue 10: within 50 MB).
constexpr long RSS_SLACK_KB = 50 * 1024;

// Connections waiting in the kernel's accept queue of the listening socket
// on 127.0.0.1:`port` (its rx_queue in /proc/net/tcp), or -1.
inline int
accept_queue (int port)
{
  std::ifstream table ("/proc/net/tcp");
  std::string line;
  std::getline (table, line);
  char local[64], remote[64], state[8], queues[64];
  while (std::getline (table, line))
    if (std::sscanf (line.c_str (), "%*s %63s %63s %7s %63s", local, remote, state, queues) == 4
        && std::string (state) == "0A"
        && std::strtol (std::strchr (local, ':') + 1, nullptr, 16) == port)
      return static_cast<int> (std::strtol (std::strchr (queues, ':') + 1, nullptr, 16));
  return -1;
}

// Opens `count` connections at the pace the server accepts them: a SYN that
// finds the accept queue full is dropped and retried by the kernel only after
// a second, so the next few connect only once the queue has room.  With
// `own_addresses`, connection i comes from 127.0.1.(i+1) (up to 254), so
// that a limit of connections per address does not apply to them.
inline std::vector<std::unique_ptr<Wire>>
open_connections (int port, int count, bool own_addresses = false)
{
  std::vector<std::unique_ptr<Wire>> wires;
  for (int i = 0; i < count; i++) {
    if (i % 4 == 0) {
      const auto deadline = Clock::now () + 10s;
      while (accept_queue (port) >= 2 && Clock::now () < deadline)
        std::this_thread::sleep_for (1ms);
    }
    const std::string source = "127.0.1." + std::to_string (i % 254 + 1);
    wires.push_back (std::make_unique<Wire> (port, own_addresses ? source.c_str () : nullptr));
  }
  return wires;
}

// ---- Digest (RFC 2617 without qop, as gst-rtsp-server does it) -----------------

inline std::string
md5 (const std::string &text)
{
  gchar *hex = g_compute_checksum_for_string (G_CHECKSUM_MD5, text.c_str (), -1);
  std::string result = hex;
  g_free (hex);
  return result;
}

// The value of `param` in a "Digest realm=\"R\", nonce=\"N\"" challenge of `head`.
inline std::string
digest_param (const std::string &head, const std::string &param)
{
  size_t at = head.find ("WWW-Authenticate: Digest ");
  if (at == std::string::npos)
    return "";
  at = head.find (param + "=\"", at);
  if (at == std::string::npos)
    return "";
  at += param.size () + 2;
  return head.substr (at, head.find ('"', at) - at);
}

// An Authorization header line of Digest (RFC 2617 without qop).
inline std::string
digest (const std::string &user, const std::string &password, const std::string &realm,
    const std::string &nonce, const std::string &method, const std::string &uri)
{
  const std::string response = md5 (md5 (user + ":" + realm + ":" + password) + ":" + nonce + ":"
      + md5 (method + ":" + uri));
  return "Authorization: Digest username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" + nonce
      + "\", uri=\"" + uri + "\", response=\"" + response + "\"\r\n";
}

}  // namespace camrelay::security_test
