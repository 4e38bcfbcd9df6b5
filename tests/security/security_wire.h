// Raw RTSP connections for the security tests: a socket that sends while it
// reads and parses answers and '$' frames, builders of hostile requests, Digest.
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

// A raw TCP connection that sends bytes while it reads, so that a flood of
// requests cannot deadlock on full socket buffers; every wait is bounded.
// `source` picks the client's loopback address (127.0.0.x).
class Wire {
 public:
  // A SYN that finds the server's accept queue full is retried after 1 s,
  // 3 s, 7 s...: a connection may take that long on a server whose listen
  // backlog is short.
  static constexpr int CONNECT_WITHIN_MS = 15000;

  explicit Wire (int port, const char *source = nullptr)
  {
    fd_ = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0)
      return;
    if (source) {
      sockaddr_in local = {};
      local.sin_family = AF_INET;
      inet_pton (AF_INET, source, &local.sin_addr);
      bind (fd_, reinterpret_cast<sockaddr *> (&local), sizeof (local));
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

  // Sends `bytes`, reading meanwhile, then reads until `answers` answers in
  // all have come (counting those of earlier calls), the server closed, or
  // `timeout` passed.
  Seen &exchange (const std::string &bytes, size_t answers, std::chrono::milliseconds timeout)
  {
    const auto deadline = Clock::now () + timeout;
    size_t sent = 0;
    while (fd_ >= 0 && !seen_.closed && (sent < bytes.size () || seen_.statuses.size () < answers)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds> (deadline - Clock::now ());
      if (left.count () <= 0)
        break;
      pollfd p = {fd_, static_cast<short> (POLLIN | (sent < bytes.size () ? POLLOUT : 0)), 0};
      if (poll (&p, 1, static_cast<int> (std::min<long> (left.count (), 100))) <= 0)
        continue;
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        receive ();
      if (!seen_.closed && sent < bytes.size () && (p.revents & POLLOUT)) {
        ssize_t n = send (fd_, bytes.data () + sent, bytes.size () - sent, MSG_NOSIGNAL);
        if (n > 0)
          sent += static_cast<size_t> (n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
          seen_.closed = true;
      }
    }
    return seen_;
  }

  // Reads (bounded) until `count` more '$' frames arrived; true when they did.
  bool wait_frames (size_t count, std::chrono::milliseconds timeout)
  {
    const size_t target = seen_.frames + count;
    const auto deadline = Clock::now () + timeout;
    while (!seen_.closed && seen_.frames < target && Clock::now () < deadline) {
      pollfd p = {fd_, POLLIN, 0};
      if (poll (&p, 1, 50) > 0)
        receive ();
    }
    return seen_.frames >= target;
  }

  // Reads what has come within `ms`; whether the server closed the connection.
  bool closed_within (int ms)
  {
    pollfd p = {fd_, POLLIN, 0};
    if (!seen_.closed && poll (&p, 1, ms) > 0)
      receive ();
    return seen_.closed;
  }

  const Seen &seen () const { return seen_; }

 private:
  void receive ()
  {
    char chunk[65536];
    ssize_t n = recv (fd_, chunk, sizeof (chunk), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      seen_.closed = true;
      return;
    }
    if (n > 0)
      in_.append (chunk, static_cast<size_t> (n));
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

  int fd_ = -1;
  std::string in_;
  Seen seen_;
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
