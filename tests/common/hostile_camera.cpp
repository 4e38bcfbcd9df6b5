// HostileRtspCamera: a line-oriented RTSP responder that answers the
// handshake up to one request and then never completes that answer.
#include "hostile_camera.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <string>
#include <thread>

namespace camtest {

namespace {

constexpr int POLL_MS = 100;

// Waits up to `timeout_ms` for `events`. 1: ready, 0: not yet, -1: error.
int
wait_for (int fd, short events, int timeout_ms)
{
  struct pollfd pfd = {fd, events, 0};
  int n = poll (&pfd, 1, timeout_ms);
  if (n < 0)
    return errno == EINTR ? 0 : -1;
  if (n == 0)
    return 0;
  return (pfd.revents & (POLLERR | POLLNVAL)) ? -1 : 1;
}

// Sends all of `text` unless the connection fails or the server stops;
// never blocks longer than POLL_MS without looking at `stopping`.
bool
send_text (int fd, const std::string &text, const std::atomic<bool> &stopping)
{
  size_t sent = 0;
  while (sent < text.size ()) {
    if (stopping)
      return false;
    int ready = wait_for (fd, POLLOUT, POLL_MS);
    if (ready < 0)
      return false;
    if (ready == 0)
      continue;
    ssize_t n = send (fd, text.data () + sent, text.size () - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      continue;
    if (n <= 0)
      return false;
    sent += static_cast<size_t> (n);
  }
  return true;
}

// Sleeps `duration` in steps, false if the server stops meanwhile.
bool
pause_for (std::chrono::milliseconds duration, const std::atomic<bool> &stopping)
{
  const auto until = std::chrono::steady_clock::now () + duration;
  while (std::chrono::steady_clock::now () < until) {
    if (stopping)
      return false;
    std::this_thread::sleep_for (std::min (duration, std::chrono::milliseconds (20)));
  }
  return !stopping;
}

struct Request {
  std::string method;
  std::string cseq;
};

// Parses the head of a request (the lines before the blank one).
Request
parse_request (const std::string &head)
{
  Request request;
  request.method = head.substr (0, head.find (' '));
  size_t at = 0;
  while ((at = head.find ("\r\n", at)) != std::string::npos) {
    at += 2;
    if (g_ascii_strncasecmp (head.c_str () + at, "CSeq:", 5) == 0) {
      size_t end = head.find ("\r\n", at);
      request.cseq = head.substr (at + 5, end == std::string::npos ? end : end - at - 5);
      request.cseq.erase (0, request.cseq.find_first_not_of (' '));
    }
  }
  return request;
}

long
content_length (const std::string &head)
{
  size_t at = 0;
  while ((at = head.find ("\r\n", at)) != std::string::npos) {
    at += 2;
    if (g_ascii_strncasecmp (head.c_str () + at, "Content-Length:", 15) == 0)
      return std::strtol (head.c_str () + at + 15, nullptr, 10);
  }
  return 0;
}

}  // namespace

const char *
hostile_method (Hostility mode)
{
  switch (mode) {
    case Hostility::TrickleHeaders:
      return "OPTIONS";
    case Hostility::HugeContentLength:
    case Hostility::SilentDescribe:
    case Hostility::EndlessHeaders:
    case Hostility::EndlessBody:
      return "DESCRIBE";
    case Hostility::SilentPlay:
      return "PLAY";
  }
  return "?";
}

const char *
hostility_name (Hostility mode)
{
  switch (mode) {
    case Hostility::TrickleHeaders:
      return "TrickleHeaders";
    case Hostility::HugeContentLength:
      return "HugeContentLength";
    case Hostility::SilentDescribe:
      return "SilentDescribe";
    case Hostility::SilentPlay:
      return "SilentPlay";
    case Hostility::EndlessHeaders:
      return "EndlessHeaders";
    case Hostility::EndlessBody:
      return "EndlessBody";
  }
  return "?";
}

HostileRtspCamera::HostileRtspCamera (Hostility mode)
    : mode_ (mode),
      server_ ([this] (int fd, const std::atomic<bool> &stopping) { serve (fd, stopping); })
{
}

std::string
HostileRtspCamera::uri () const
{
  return "rtsp://127.0.0.1:" + std::to_string (port ()) + "/cam";
}

bool
HostileRtspCamera::wait_stuck (guint count, std::chrono::milliseconds timeout)
{
  std::unique_lock<std::mutex> lock (mutex_);
  return stuck_changed_.wait_for (lock, timeout, [&] { return stuck_ >= count; });
}

void
HostileRtspCamera::serve (int fd, const std::atomic<bool> &stopping)
{
  const std::string base = uri () + "/";
  std::string pending;  // bytes received and not yet handled
  char chunk[4096];
  while (!stopping) {
    int ready = wait_for (fd, POLLIN, POLL_MS);
    if (ready < 0)
      return;
    if (ready == 0)
      continue;
    ssize_t n = recv (fd, chunk, sizeof (chunk), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
      return;
    if (n < 0)
      continue;
    pending.append (chunk, static_cast<size_t> (n));

    size_t end;
    while ((end = pending.find ("\r\n\r\n")) != std::string::npos) {
      const std::string head = pending.substr (0, end + 2);
      const size_t total = end + 4 + static_cast<size_t> (std::max (0L, content_length (head)));
      if (pending.size () < total)
        break;
      pending.erase (0, total);
      const Request request = parse_request (head);
      const std::string status = "RTSP/1.0 200 OK\r\nCSeq: " + request.cseq + "\r\n";

      if (request.method == hostile_method (mode_)) {
        {
          std::lock_guard<std::mutex> lock (mutex_);
          stuck_++;
        }
        stuck_changed_.notify_all ();
        switch (mode_) {
          case Hostility::TrickleHeaders: {
            if (!send_text (fd, status, stopping))
              return;
            for (guint line = 0; pause_for (std::chrono::milliseconds (500), stopping); line++) {
              if (!send_text (fd, "X-Trickle-" + std::to_string (line) + ": still thinking\r\n",
                      stopping))
                return;
            }
            return;
          }
          case Hostility::HugeContentLength:
            if (!send_text (fd, status + "Content-Type: application/sdp\r\n"
                        "Content-Length: 1000000000\r\n\r\n", stopping))
              return;
            break;  // and nothing more: the body never comes
          case Hostility::EndlessHeaders: {
            if (!send_text (fd, status, stopping))
              return;
            // A thousand lines at a time, every 10 ms: as fast as a reader
            // keeps up, without spinning this thread.
            for (guint line = 0;; line += 1000) {
              std::string lines;
              for (guint i = 0; i < 1000; i++)
                lines += "X-Header-" + std::to_string (line + i) + ": more\r\n";
              if (!send_text (fd, lines, stopping) ||
                  !pause_for (std::chrono::milliseconds (10), stopping))
                return;
            }
          }
          case Hostility::EndlessBody: {
            if (!send_text (fd, status + "Content-Type: application/sdp\r\n"
                        "Content-Length: 2000000000\r\n\r\n", stopping))
              return;
            const std::string body (64 * 1024, 'v');
            while (send_text (fd, body, stopping)) {
            }
            return;
          }
          case Hostility::SilentDescribe:
          case Hostility::SilentPlay:
            break;  // read on, never answer
        }
        continue;
      }

      std::string answer;
      if (request.method == "OPTIONS") {
        answer = status + "Public: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, "
                          "GET_PARAMETER\r\n\r\n";
      } else if (request.method == "DESCRIBE") {
        const std::string sdp =
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=hostile\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
            "a=fmtp:96 packetization-mode=1\r\na=control:stream=0\r\n";
        answer = status + "Content-Base: " + base + "\r\nContent-Type: application/sdp\r\n"
                 "Content-Length: " + std::to_string (sdp.size ()) + "\r\n\r\n" + sdp;
      } else if (request.method == "SETUP") {
        answer = status + "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                          "Session: 12345678;timeout=60\r\n\r\n";
      } else if (request.method == "TEARDOWN" || request.method == "GET_PARAMETER") {
        answer = status + "Session: 12345678\r\n\r\n";
      } else {
        answer = "RTSP/1.0 405 Method Not Allowed\r\nCSeq: " + request.cseq + "\r\n\r\n";
      }
      if (!send_text (fd, answer, stopping))
        return;
    }
  }
}

}  // namespace camtest
